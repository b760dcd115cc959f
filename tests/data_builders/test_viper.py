"""VIPeR builder on a fixture in the real VIPeR/cam_a, cam_b layout."""

from __future__ import annotations

import dataclasses
import os

import pytest

from data_builders import common, fixtures, image_lists
from data_builders.viper import viper_dataset_builder as viper

PIDS = [0, 2, 5, 11, 17, 873]


def make_viper(root: str) -> str:
    for pid in PIDS:
        fixtures.write_image(os.path.join(root, "VIPeR", "cam_a", f"{pid:03d}_45.bmp"))
        fixtures.write_image(os.path.join(root, "VIPeR", "cam_b", f"{pid:03d}_90.bmp"))
    return root


def tiny(split: int = 0):
    base = viper.Builder.builder_configs[f"s{split}"]
    return dataclasses.replace(base, name=f"tiny{split}", num_test_ids=3,
                               counts={"train": (6, 3), "query": (3, 3), "gallery": (3, 3)})


def test_configs():
    cfgs = viper.Builder.builder_configs
    assert list(cfgs) == [f"s{k}" for k in range(10)]
    assert cfgs["s4"].num_test_ids == 316 and cfgs["s4"].split_index == 4 and cfgs["s4"].counts == viper.COUNTS


def test_builds_split(tmp_path):
    data = fixtures.read_splits(fixtures.build(viper.Builder, tiny(1), make_viper(str(tmp_path / "m")), str(tmp_path / "t")))
    train_ids, test_ids = image_lists.seeded_split(PIDS, 3, 1)
    assert sorted({int(e["person_id"]) for e in data["train"]}) == train_ids
    assert [int(e["person_id"]) for e in data["query"]] == test_ids
    assert {e["file_name"].split("/")[0] for e in data["query"]} == {"cam_a"}
    assert {int(e["camera_id"]) for e in data["gallery"]} == {1}
    assert data["train"][0]["image"].shape == (8, 4, 3)


def test_unpaired_person(tmp_path):
    manual = make_viper(str(tmp_path / "m"))
    os.remove(os.path.join(manual, "VIPeR", "cam_b", "005_90.bmp"))
    with pytest.raises(common.DatasetError, match=r"different persons \(e.g. \[5\]\)"):
        fixtures.build(viper.Builder, tiny(), manual, str(tmp_path / "t"))
