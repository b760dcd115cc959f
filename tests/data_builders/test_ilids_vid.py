"""iLIDS-VID builder on a fixture in the real sequences/cam*/personNNN layout."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import scipy.io

from data_builders import common, fixtures
from data_builders.ilids_vid import ilids_vid_dataset_builder as ilids_vid

PERSONS = [1, 2, 4, 7]


def make_ilids_vid(root: str) -> str:
    for p in PERSONS:
        for cam in (1, 2):
            for f in (317, 318):
                fixtures.write_image(os.path.join(root, "i-LIDS-VID", "sequences", f"cam{cam}", f"person{p:03d}",
                                                  f"cam{cam}_person{p:03d}_{f + p:05d}.png"))
    ls_set = np.array([[2, 4, 1, 3]] * 10, dtype=np.float64)  # test = sorted persons #2, #4
    os.makedirs(os.path.join(root, "train-test people splits"))
    scipy.io.savemat(os.path.join(root, ilids_vid.SPLITS_MAT), {"ls_set": ls_set})
    return root


def tiny():
    return dataclasses.replace(ilids_vid.Builder.builder_configs["s3"], name="tiny", num_persons=4,
                               counts={"train": (8, 2), "query": (4, 2), "gallery": (4, 2)},
                               num_tracklets={"train": 4, "query": 2, "gallery": 2})


def test_builds_official_split(tmp_path):
    data = fixtures.read_splits(fixtures.build(ilids_vid.Builder, tiny(), make_ilids_vid(str(tmp_path / "m")), str(tmp_path / "t")))
    assert sorted({int(e["person_id"]) for e in data["query"]}) == [2, 7]
    assert sorted({int(e["person_id"]) for e in data["train"]}) == [1, 4]
    assert {int(e["camera_id"]) for e in data["gallery"]} == {1}
    q = data["query"][0]
    assert q["file_name"] == "i-LIDS-VID/sequences/cam1/person002/cam1_person002_00319.png"
    assert (int(q["tracklet_id"]), int(q["frame_id"])) == (2, 0)


def test_misfiled_frame(tmp_path):
    manual = make_ilids_vid(str(tmp_path / "m"))
    seq = os.path.join(manual, "i-LIDS-VID", "sequences", "cam2", "person004")
    os.rename(os.path.join(seq, "cam2_person004_00321.png"), os.path.join(seq, "cam1_person004_00321.png"))
    with pytest.raises(common.DatasetError, match="wrong camera or person"):
        fixtures.build(ilids_vid.Builder, tiny(), manual, str(tmp_path / "t"))


def test_published_counts():
    cfg = ilids_vid.Builder.builder_configs["s0"]
    assert cfg.num_persons == 300 and cfg.num_tracklets == {"train": 300, "query": 150, "gallery": 150}
