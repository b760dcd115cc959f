"""LS-VID builder on a fixture in the real tracklet_* + list_sequence + test/data layout."""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
import pytest
import scipy.io

from data_builders import common, fixtures
from data_builders.ls_vid import ls_vid_dataset_builder as ls_vid

h5py = pytest.importorskip("h5py")

TRAIN = [("tracklet_train/0001/0001_05_03_0001", 1, 2), ("tracklet_train/0002/0002_01_11_0007", 2, 1)]
TEST = [("tracklet_test/0003/0003_02_01_0001", 3, 2), ("tracklet_test/0003/0003_09_07_0002", 3, 1),
        ("tracklet_test/0004/0004_01_15_0003", 4, 1), ("tracklet_test/0000/0000_01_02_0004", -1, 1)]


def make_ls_vid(root: str, under_info: bool = False) -> str:
    top = os.path.join(root, "LS-VID")
    for tracks in (TRAIN, TEST):
        for prefix, _, n in tracks:
            for f in range(n):
                fixtures.write_image(os.path.join(top, f"{prefix}_{f:03d}.jpg"))
    lists = os.path.join(top, "info", "list_sequence") if under_info else os.path.join(top, "list_sequence")
    fixtures.write_text(os.path.join(lists, "list_seq_train.txt"), [f"{p} {pid}" for p, pid, _ in TRAIN])
    fixtures.write_text(os.path.join(lists, "list_seq_test.txt"), [f"{p} {pid}" for p, pid, _ in TEST])
    mat = os.path.join(top, "info", "data", "info_test.mat") if under_info else os.path.join(top, "test", "data", "info_test.mat")
    os.makedirs(os.path.dirname(mat), exist_ok=True)
    with h5py.File(mat, "w") as f:  # MATLAB v7.3 layout: query is a 1 x N row of 1-based indices
        f["query"] = np.array([[1.0, 3.0]])
    return root


def tiny():
    return dataclasses.replace(ls_vid.Builder.builder_configs["standard"], name="tiny", num_ids=4, num_sequences=6,
                               num_cameras=5, num_tracklets={"train": 2, "query": 2, "gallery": 1})


@pytest.mark.parametrize("under_info", [False, True])
def test_builds_sequences(tmp_path, under_info):
    data = fixtures.read_splits(fixtures.build(ls_vid.Builder, tiny(), make_ls_vid(str(tmp_path / "m"), under_info), str(tmp_path / "t")))
    first = data["train"][0]
    assert first["file_name"] == "tracklet_train/0001/0001_05_03_0001_000.jpg"
    assert (int(first["camera_id"]), int(first["tracklet_id"]), int(first["frame_id"])) == (2, 0, 0)
    assert [int(e["frame_id"]) for e in data["train"] if int(e["tracklet_id"]) == 0] == [0, 1]
    assert {(int(e["person_id"]), int(e["tracklet_id"])) for e in data["query"]} == {(3, 0), (4, 2)}
    assert {(int(e["person_id"]), int(e["tracklet_id"])) for e in data["gallery"]} == {(3, 1)}  # junk dropped


def test_sequence_without_frames(tmp_path):
    manual = make_ls_vid(str(tmp_path / "m"))
    os.remove(os.path.join(manual, "LS-VID", "tracklet_test", "0004", "0004_01_15_0003_000.jpg"))
    with pytest.raises(common.DatasetError, match="0004_01_15_0003' .*has no frames"):
        fixtures.build(ls_vid.Builder, tiny(), manual, str(tmp_path / "t"))


def test_query_rows_from_v5_mat():
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"query": np.array([[2, 5]])})
    assert ls_vid.read_query_rows(buf.getvalue(), "x").tolist() == [1, 4]
