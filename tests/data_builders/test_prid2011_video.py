"""PRID-2011 multi-shot builder on a fixture in the real prid_2011/multi_shot layout."""

from __future__ import annotations

import dataclasses
import os

import pytest

from data_builders import common, fixtures, image_lists
from data_builders.prid2011_video import prid2011_video_dataset_builder as prid_video

FRAMES = {1: (3, 3), 2: (1, 3), 3: (3, 2), 4: (2, 3), 5: (3, 0)}  # person -> frames in cam_a, cam_b


def make_prid_video(root: str) -> str:
    for p, counts in FRAMES.items():
        for folder, n in zip(("cam_a", "cam_b"), counts):
            for f in range(1, n + 1):
                fixtures.write_image(os.path.join(root, "prid_2011", "multi_shot", folder, f"person_{p:04d}", f"{f:04d}.png"))
    return root


def tiny(base: str, **changes):
    return dataclasses.replace(prid_video.Builder.builder_configs[base], name=f"tiny_{base}", num_cam_a=5,
                               num_cam_b=4, num_shared=4, **changes)


def test_all_shared_persons(tmp_path):
    cfg = tiny("p200_s2", num_persons=4, num_test_ids=2, counts={},
               num_tracklets={"train": 4, "query": 2, "gallery": 2})
    data = fixtures.read_splits(fixtures.build(prid_video.Builder, cfg, make_prid_video(str(tmp_path / "m")), str(tmp_path / "t")))
    train, test = image_lists.seeded_split([1, 2, 3, 4], 2, 2)
    assert sorted({int(e["person_id"]) for e in data["train"]}) == train
    assert sorted({int(e["person_id"]) for e in data["query"]}) == test
    e = data["query"][0]
    assert e["file_name"] == f"multi_shot/cam_a/person_{test[0]:04d}/0001.png"
    assert (int(e["tracklet_id"]), int(e["frame_id"]), int(e["camera_id"])) == (2 * test[0], 0, 0)


def test_min_frames_subset(tmp_path):
    cfg = tiny("p178_s0", min_frames=3, num_persons=1, num_test_ids=1, counts={}, num_tracklets={})
    with pytest.raises(common.DatasetError, match="cannot hold out 1 test identities from 1"):
        fixtures.build(prid_video.Builder, cfg, make_prid_video(str(tmp_path / "m")), str(tmp_path / "t"))
    cfg = tiny("p178_s0", min_frames=2, num_persons=3, num_test_ids=1, counts={}, num_tracklets={})
    data = fixtures.read_splits(fixtures.build(prid_video.Builder, cfg, make_prid_video(str(tmp_path / "m2")), str(tmp_path / "t2")))
    assert {int(e["person_id"]) for e in data["train"] + data["query"]} == {1, 3, 4}  # person 2 too short


def test_configs():
    cfgs = prid_video.Builder.builder_configs
    assert len(cfgs) == 20 and cfgs["p178_s3"].min_frames == 27 and cfgs["p178_s3"].num_test_ids == 89
    assert cfgs["p200_s0"].num_tracklets == {"train": 200, "query": 100, "gallery": 100}
