"""MSMT17 builder on V1 and V2 fixtures in the real folder + list-file layout."""

from __future__ import annotations

import dataclasses
import os

import pytest

from data_builders import common, fixtures
from data_builders.msmt17 import msmt17_dataset_builder as msmt

LISTS = {
    "train": [("0000/0000_000_01_0303morning_0015_0.jpg", 0), ("0000/0000_001_05_0303morning_0036_1.jpg", 0)],
    "val": [("0001/0001_000_15_0303noon_0100_0.jpg", 1)],
    "query": [("0000/0000_000_02_0303afternoon_0010_0.jpg", 0), ("0003/0003_004_03_0113morning_0500_2.jpg", 3)],
    "gallery": [("0000/0000_002_07_0303morning_1000_0.jpg", 0), ("0003/0003_000_09_0113noon_0001_0.jpg", 3)],
}


def make_msmt(root: str, version: str) -> str:
    cfg = msmt.Builder.builder_configs[version]
    top = os.path.join(root, cfg.top)
    for split, entries in LISTS.items():
        folder = cfg.train_dir if split in ("train", "val") else cfg.test_dir
        for rel, _ in entries:
            fixtures.write_image(os.path.join(top, folder, rel))
        fixtures.write_text(os.path.join(top, f"list_{split}.txt"), [f"{rel} {pid}" for rel, pid in entries])
    return root


def tiny(version: str, **changes):
    kw = {"counts": {"train": (3, 2), "query": (2, 2), "gallery": (2, 2)}, "num_cameras": 7, **changes}
    return dataclasses.replace(msmt.Builder.builder_configs[version], name=f"tiny_{version}", **kw)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_builds_splits(tmp_path, version):
    manual = make_msmt(str(tmp_path / "m"), version)
    data = fixtures.read_splits(fixtures.build(msmt.Builder, tiny(version), manual, str(tmp_path / "t")))
    folder = "train" if version == "v1" else "mask_train_v2"
    assert [e["file_name"] for e in data["train"]][0] == f"{folder}/0000/0000_000_01_0303morning_0015_0.jpg"
    assert sorted((int(e["person_id"]), int(e["camera_id"]), int(e["label"])) for e in data["train"]) == [
        (0, 0, 0), (0, 4, 0), (1, 14, 1)]
    assert sorted(int(e["camera_id"]) for e in data["gallery"]) == [6, 8]


def test_published_counts():
    assert msmt.Builder.builder_configs["v1"].counts == msmt.COUNTS
    assert msmt.COUNTS["gallery"] == (82161, 3060) and msmt.Builder.builder_configs["v2"].num_cameras == 15


@pytest.mark.parametrize("case, match", [
    ("missing_list", "list_gallery.txt' is missing"),
    ("missing_file", "listed in list_query.txt, is missing"),
    ("bad_line", "line 2 of .*list_val.txt"),
])
def test_bad_input(tmp_path, case, match):
    manual = make_msmt(str(tmp_path / "m"), "v1")
    top = os.path.join(manual, "MSMT17_V1")
    if case == "missing_list":
        os.remove(os.path.join(top, "list_gallery.txt"))
    elif case == "missing_file":
        os.remove(os.path.join(top, "test", LISTS["query"][1][0]))
    elif case == "bad_line":
        with open(os.path.join(top, "list_val.txt"), "a") as f:
            f.write("0001/oops.jpg 1\n")
    with pytest.raises(common.DatasetError, match=match):
        fixtures.build(msmt.Builder, tiny("v1"), manual, str(tmp_path / "t"))


def test_skips_other_folders_holding_a_train_folder(tmp_path):
    manual = make_msmt(str(tmp_path / "m"), "v1")
    fixtures.write_image(os.path.join(manual, "DukeMTMC-VideoReID", "train", "0001", "0001", "x.jpg"))
    data = fixtures.read_splits(fixtures.build(msmt.Builder, tiny("v1"), manual, str(tmp_path / "t")))
    assert data["query"][0]["file_name"].startswith("test/")
