"""CUHK-SYSU builder on a fixture in the cropped_images layout."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import scipy.io

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


def make_release(root: str, box_b=(10, 2, 6, 9)) -> str:
    """Image/SSM scenes + annotation/test/train_test/Train.mat in the official layout."""
    for name, rgb in (("s1.jpg", (200, 30, 30)), ("s2.jpg", (30, 200, 30))):
        fixtures.write_image(os.path.join(root, "CUHK-SYSU", "Image", "SSM", name), rgb, size=(20, 24))
    scene_dtype = [("imname", object), ("idlocate", object), ("ishard", object)]

    def scenes(*rows):
        return np.array([[(im, np.array([box], float), 0) for im, box in rows]], dtype=scene_dtype)

    persons = np.empty((2, 1), dtype=object)
    persons[0, 0] = {"idname": "p00003", "nAppear": 2, "scene": scenes(("s1.jpg", (0, 0, 4, 8)), ("s2.jpg", (5, 5, 4, 8)))}
    persons[1, 0] = {"idname": "p00010", "nAppear": 1, "scene": scenes(("s1.jpg", box_b))}
    mat = os.path.join(root, "CUHK-SYSU", "annotation", "test", "train_test", "Train.mat")
    os.makedirs(os.path.dirname(mat))
    scipy.io.savemat(mat, {"Train": persons})
    return root


def test_train_from_scenes(tmp_path):
    cfg = dataclasses.replace(sysu.Builder.builder_configs["train_from_scenes"], name="tiny_scenes",
                              counts={"train": (3, 2)})
    data = fixtures.read_splits(fixtures.build(sysu.Builder, cfg, make_release(str(tmp_path / "m")), str(tmp_path / "t")))
    names = [e["file_name"] for e in data["train"]]
    assert names == ["cropped_images/p00003_s1_1.jpg", "cropped_images/p00003_s2_1.jpg", "cropped_images/p00010_s1_1.jpg"]
    shapes = [e["image"].shape for e in data["train"]]
    assert shapes == [(8, 4, 3), (8, 4, 3), (9, 6, 3)]
    assert data["train"][1]["image"][4, 2, 1] > 150  # cut out of the green scene s2
    assert [int(e["label"]) for e in data["train"]] == [0, 0, 1]


def test_box_outside_scene(tmp_path):
    cfg = dataclasses.replace(sysu.Builder.builder_configs["train_from_scenes"], name="tiny_scenes", counts={})
    with pytest.raises(common.DatasetError, match=r"box \(10, 20, 6, 9\) of p00010 lies outside s1.jpg \(24x20\)"):
        fixtures.build(sysu.Builder, cfg, make_release(str(tmp_path / "m"), box_b=(10, 20, 6, 9)), str(tmp_path / "t"))
