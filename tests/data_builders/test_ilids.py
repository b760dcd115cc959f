"""QMUL iLIDS builder on a fixture in the real i-LIDS_Pedestrian/Persons layout."""

from __future__ import annotations

import dataclasses
import os

import pytest

from data_builders import common, fixtures
from data_builders.ilids import ilids_dataset_builder as ilids

IMAGES = {1: 3, 2: 2, 3: 4, 4: 2, 5: 3}  # person -> number of images


def make_ilids(root: str) -> str:
    for pid, n in IMAGES.items():
        for i in range(1, n + 1):
            fixtures.write_image(os.path.join(root, "i-LIDS_Pedestrian", "Persons", f"{pid:04d}{i:03d}.jpg"))
    return root


def tiny(k: int = 0):
    return dataclasses.replace(
        ilids.Builder.builder_configs[f"s{k}"], name=f"tiny{k}", num_images=14, num_ids=5,
        num_test_ids=3, counts={"train": (None, 2), "query": (3, 3), "gallery": (3, 3)},
    )


@pytest.mark.parametrize("k", [0, 7])
def test_builds_split(tmp_path, k):
    data = fixtures.read_splits(fixtures.build(ilids.Builder, tiny(k), make_ilids(str(tmp_path / "m")), str(tmp_path / "t")))
    train = {int(e["person_id"]) for e in data["train"]}
    assert len(data["train"]) == sum(IMAGES[p] for p in train)
    q = {int(e["person_id"]): e for e in data["query"]}
    g = {int(e["person_id"]): e for e in data["gallery"]}
    assert set(q) == set(g) and not set(q) & train
    for pid in q:  # two different images of the person, hence different pseudo-cameras
        assert q[pid]["file_name"] != g[pid]["file_name"]
        assert int(q[pid]["camera_id"]) == int(q[pid]["file_name"][-7:-4]) - 1 != int(g[pid]["camera_id"])


def test_wrong_count(tmp_path):
    manual = make_ilids(str(tmp_path / "m"))
    os.remove(os.path.join(manual, "i-LIDS_Pedestrian", "Persons", "0001003.jpg"))
    with pytest.raises(common.DatasetError, match="found 13 images, the published dataset has 14"):
        fixtures.build(ilids.Builder, tiny(), manual, str(tmp_path / "t"))


def test_published_counts():
    cfg = ilids.Builder.builder_configs["s0"]
    assert (cfg.num_images, cfg.num_ids, cfg.num_test_ids) == (476, 119, 60)
