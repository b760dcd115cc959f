"""CUHK02 builder on a fixture in the real Dataset/P1..P5/cam1,cam2 layout."""

from __future__ import annotations

import dataclasses
import os

import pytest

from data_builders import common, fixtures
from data_builders.cuhk02 import cuhk02_dataset_builder as cuhk02

PERSONS = {"P1": [1, 2], "P2": [1], "P3": [3], "P4": [1], "P5": [7, 9]}


def make_cuhk02(root: str) -> str:
    for pair, pids in PERSONS.items():
        for pid in pids:
            for cam in ("cam1", "cam2"):
                fixtures.write_image(os.path.join(root, "Dataset", pair, cam, f"{pid:04d}_{cam[-1]}.png"))
    return root


def tiny(name: str, **changes):
    return dataclasses.replace(cuhk02.Builder.builder_configs[name], name=f"tiny_{name}", num_ids=7,
                               num_images=14, **changes)


def test_standard(tmp_path):
    cfg = tiny("standard", counts={"train": (10, 5), "query": (2, 2), "gallery": (2, 2)})
    data = fixtures.read_splits(fixtures.build(cuhk02.Builder, cfg, make_cuhk02(str(tmp_path / "m")), str(tmp_path / "t")))
    assert sorted({int(e["person_id"]) for e in data["train"]}) == [10001, 10002, 20001, 30003, 40001]
    assert sorted(int(e["person_id"]) for e in data["query"]) == [50007, 50009]
    assert {int(e["camera_id"]) for e in data["query"]} == {8} and {int(e["camera_id"]) for e in data["gallery"]} == {9}
    assert data["query"][0]["file_name"] == "P5/cam1/0007_1.png"


def test_all(tmp_path):
    data = fixtures.read_splits(fixtures.build(cuhk02.Builder, tiny("all", counts={"train": (14, 7)}),
                                               make_cuhk02(str(tmp_path / "m")), str(tmp_path / "t")))
    assert list(data) == ["train"] and sorted({int(e["label"]) for e in data["train"]}) == list(range(7))


def test_missing_pair(tmp_path):
    manual = make_cuhk02(str(tmp_path / "m"))
    os.rename(os.path.join(manual, "Dataset", "P4"), os.path.join(manual, "Dataset", "P4x"))
    with pytest.raises(common.DatasetError, match="P4/cam1' is missing"):
        fixtures.build(cuhk02.Builder, tiny("standard"), manual, str(tmp_path / "t"))


def test_published_counts():
    cfg = cuhk02.Builder.builder_configs["standard"]
    assert (cfg.num_ids, cfg.num_images, cfg.num_cameras) == (1816, 7264, 10)
