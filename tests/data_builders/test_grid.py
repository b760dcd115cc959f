"""GRID builder on a fixture in the real underground_reid layout, with a partitions .mat."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import scipy.io

from data_builders import common, fixtures
from data_builders.grid import grid_dataset_builder as grid

PERSONS = [1, 2, 3, 4]
TRAIN = {0: [1, 3], 1: [2, 4]}  # partition -> training persons


def make_grid(root: str) -> str:
    top = os.path.join(root, "underground_reid")
    for p in PERSONS:
        fixtures.write_image(os.path.join(top, "probe", f"{p:04d}_{p}_25004_107_32_130.jpeg"))
        fixtures.write_image(os.path.join(top, "gallery", f"{p:04d}_{p + 4}_25004_107_32_130.jpeg"))
    for k in range(2):
        fixtures.write_image(os.path.join(top, "gallery", f"0000_{k + 1}_0000{k}_1_1_1.jpeg"))
    # trainIdxAll: 1 x 10 cell of 1 x 1 structs whose third field holds the training persons.
    cells = np.empty((1, 10), dtype=object)
    dtype = [("idxProbe", object), ("idxGallery", object), ("idxTrain", object)]
    for k in range(10):
        train = np.array([TRAIN[k % 2]], dtype=np.float64)
        cells[0, k] = np.array([[(np.zeros((1, 1)), np.zeros((1, 1)), train)]], dtype=dtype)
    scipy.io.savemat(os.path.join(top, grid.PARTITIONS), {"trainIdxAll": cells})
    return root


def tiny(k: int):
    return dataclasses.replace(
        grid.Builder.builder_configs[f"s{k}"], name=f"tiny{k}", num_probe=4, num_gallery=6,
        num_train_ids=2, counts={"train": (4, 2), "query": (2, 2), "gallery": (4, 3)},
    )


@pytest.mark.parametrize("k", [0, 1])
def test_builds_official_partition(tmp_path, k):
    data = fixtures.read_splits(fixtures.build(grid.Builder, tiny(k), make_grid(str(tmp_path / "m")), str(tmp_path / "t")))
    assert sorted({int(e["person_id"]) for e in data["train"]}) == TRAIN[k]
    test = sorted(set(PERSONS) - set(TRAIN[k]))
    assert sorted(int(e["person_id"]) for e in data["query"]) == test
    assert sorted(int(e["person_id"]) for e in data["gallery"]) == [0, 0, *test]
    assert {e["file_name"].split("/")[0] for e in data["query"]} == {"probe"}
    assert int(data["query"][0]["camera_id"]) == test[0] - 1


def test_missing_partitions(tmp_path):
    manual = make_grid(str(tmp_path / "m"))
    os.remove(os.path.join(manual, "underground_reid", grid.PARTITIONS))
    with pytest.raises(common.DatasetError, match="features_and_partitions.mat' is missing"):
        fixtures.build(grid.Builder, tiny(0), manual, str(tmp_path / "t"))


def test_published_counts():
    cfg = grid.Builder.builder_configs["s9"]
    assert (cfg.num_probe, cfg.num_gallery, cfg.split_index, cfg.num_cameras) == (250, 1025, 9, 8)
