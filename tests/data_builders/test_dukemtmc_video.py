"""DukeMTMC-VideoReID builder on a fixture in the real split/PPPP/TTTT layout."""

from __future__ import annotations

import dataclasses
import os

import pytest

from data_builders import common, fixtures
from data_builders.dukemtmc_video import dukemtmc_video_dataset_builder as duke_video

LAYOUT = {  # split -> [(person, tracklet folder, camera, frames)]
    "train": [("0001", "0001", 6, 2), ("0001", "0003", 2, 1), ("0009", "0001", 8, 2)],
    "query": [("0002", "0001", 1, 1)],
    "gallery": [("0002", "0004", 5, 2), ("0770", "0001", 3, 1)],
}


def make_duke_video(root: str, old_names: bool = False) -> str:
    for split, tracks in LAYOUT.items():
        for pid, t, cam, n in tracks:
            for f in range(n):
                name = f"{pid}C{cam}F{99 + f:04d}X30823.jpg" if old_names else f"{pid}_C{cam}_F{99 + f:04d}_X30823.jpg"
                fixtures.write_image(os.path.join(root, "DukeMTMC-VideoReID", split, pid, t, name))
    return root


def tiny():
    return dataclasses.replace(duke_video.Builder.builder_configs["standard"], name="tiny", num_cameras=6,
                               counts={"train": (5, 2), "query": (1, 1)},
                               num_tracklets={"train": 3, "query": 1, "gallery": 2})


@pytest.mark.parametrize("old_names", [False, True])
def test_builds_tracklets(tmp_path, old_names):
    data = fixtures.read_splits(fixtures.build(duke_video.Builder, tiny(), make_duke_video(str(tmp_path / "m"), old_names), str(tmp_path / "t")))
    first = data["train"][0]
    assert first["file_name"].startswith("train/0001/0001/0001")
    assert (int(first["tracklet_id"]), int(first["frame_id"]), int(first["camera_id"])) == (0, 0, 5)
    assert sorted({(int(e["person_id"]), int(e["tracklet_id"])) for e in data["train"]}) == [(1, 0), (1, 1), (9, 2)]
    assert {int(e["person_id"]) for e in data["gallery"]} == {2, 770}


def test_misfiled_frame(tmp_path):
    manual = make_duke_video(str(tmp_path / "m"))
    fixtures.write_image(os.path.join(manual, "DukeMTMC-VideoReID", "query", "0002", "0001", "0003_C1_F0100_X30823.jpg"))
    with pytest.raises(common.DatasetError, match="not filed as query/PPPP/TTTT"):
        fixtures.build(duke_video.Builder, tiny(), manual, str(tmp_path / "t"))


def test_published_counts():
    cfg = duke_video.Builder.builder_configs["standard"]
    assert cfg.num_tracklets == {"train": 2196, "query": 702, "gallery": 2636} and cfg.num_cameras == 8
