"""CUHK-SYSU builder on a fixture in the cropped_images layout."""

from __future__ import annotations

import dataclasses
import os

import pytest

from data_builders import common, fixtures
from data_builders.cuhk_sysu import cuhk_sysu_dataset_builder as sysu

NAMES = ["p11422_s16929_1.jpg", "p11422_s16930_2.jpg", "p00007_s00012_1.jpg"]


def make_sysu(root: str) -> str:
    for n in NAMES:
        fixtures.write_image(os.path.join(root, "CUHK-SYSU", "cropped_images", n))
    return root


def tiny(**counts):
    return dataclasses.replace(sysu.Builder.builder_configs["crops"], name="tiny", counts=counts)


def test_builds_train(tmp_path):
    data = fixtures.read_splits(fixtures.build(sysu.Builder, tiny(train=(3, 2)), make_sysu(str(tmp_path / "m")), str(tmp_path / "t")))
    assert list(data) == ["train"]
    assert [(int(e["person_id"]), int(e["label"]), int(e["camera_id"])) for e in data["train"]] == [
        (7, 0, 0), (11422, 1, 0), (11422, 1, 0)]


def test_counts(tmp_path):
    assert sysu.Builder.builder_configs["crops"].counts == {"train": (34574, 11934)}
    with pytest.raises(common.DatasetError, match="found 2 train identities, the published dataset has 3"):
        fixtures.build(sysu.Builder, tiny(train=(3, 3)), make_sysu(str(tmp_path / "m")), str(tmp_path / "t"))
