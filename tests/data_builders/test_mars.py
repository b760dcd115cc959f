"""MARS builder on a fixture in the real bbox_train/bbox_test + info/ layout."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import scipy.io

from data_builders import common, fixtures
from data_builders.mars import mars_dataset_builder as mars

# (person, camera, tracklet number, frames); "00-1" is junk as in the real data.
TRAIN = [("0001", 1, 1, 2), ("0001", 3, 2, 1), ("0004", 2, 1, 2)]
TEST = [("0002", 1, 1, 2), ("0002", 5, 1, 1), ("0000", 6, 3, 2), ("00-1", 4, 1, 1), ("0003", 2, 1, 1), ("0003", 4, 2, 2)]
QUERY_ROWS = [1, 5]  # 1-based rows of TEST


def _write(root: str, folder: str, tracks: list) -> tuple[list[str], np.ndarray]:
    names, rows = [], []
    for pid, cam, t, n in tracks:
        start = len(names) + 1
        for f in range(1, n + 1):
            name = f"{pid}C{cam}T{t:04d}F{f:03d}.jpg"
            names.append(name)
            fixtures.write_image(os.path.join(root, folder, pid, name))
        rows.append([start, len(names), -1 if pid == "00-1" else int(pid), cam])
    return names, np.array(rows, dtype=np.float64)


def make_mars(root: str) -> str:
    train_names, train_info = _write(root, "bbox_train", TRAIN)
    test_names, test_info = _write(root, "bbox_test", TEST)
    fixtures.write_text(os.path.join(root, "info", "train_name.txt"), train_names)
    fixtures.write_text(os.path.join(root, "info", "test_name.txt"), test_names)
    scipy.io.savemat(os.path.join(root, "info", "tracks_train_info.mat"), {"track_train_info": train_info})
    scipy.io.savemat(os.path.join(root, "info", "tracks_test_info.mat"), {"track_test_info": test_info})
    scipy.io.savemat(os.path.join(root, "info", "query_IDX.mat"), {"query_IDX": np.array([QUERY_ROWS])})
    return root


def tiny(name: str, gallery: int):
    return dataclasses.replace(mars.Builder.builder_configs[name], name=f"tiny_{name}", counts={"train": (5, 2)},
                               num_tracklets={"train": 3, "query": 2, "gallery": gallery})


@pytest.mark.parametrize("name, gallery", [("standard", 3), ("tkp", 5)])
def test_builds_tracklets(tmp_path, name, gallery):
    data = fixtures.read_splits(fixtures.build(mars.Builder, tiny(name, gallery), make_mars(str(tmp_path / "m")), str(tmp_path / "t")))
    first = data["train"][0]
    assert first["file_name"] == "bbox_train/0001/0001C1T0001F001.jpg"
    assert (int(first["tracklet_id"]), int(first["frame_id"]), int(first["camera_id"])) == (0, 0, 0)
    assert [int(e["frame_id"]) for e in data["train"] if int(e["tracklet_id"]) == 0] == [0, 1]
    assert {int(e["tracklet_id"]) for e in data["query"]} == {0, 4}
    gal = {int(e["tracklet_id"]) for e in data["gallery"]}
    assert gal == ({0, 1, 2, 4, 5} if name == "tkp" else {1, 2, 5})  # junk row 3 dropped
    assert 0 in {int(e["person_id"]) for e in data["gallery"]}


def test_missing_frame(tmp_path):
    manual = make_mars(str(tmp_path / "m"))
    os.remove(os.path.join(manual, "bbox_test", "0003", "0003C4T0002F002.jpg"))
    with pytest.raises(common.DatasetError, match="0003C4T0002F002.jpg.*missing"):
        fixtures.build(mars.Builder, tiny("standard", 3), manual, str(tmp_path / "t"))


def test_published_counts():
    cfg = mars.Builder.builder_configs["tkp"]
    assert cfg.num_tracklets == {"train": 8298, "query": 1980, "gallery": 11310} and cfg.num_cameras == 6
