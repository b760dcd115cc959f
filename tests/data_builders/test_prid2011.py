"""PRID2011 single-shot builder on a fixture in the real prid_2011/single_shot layout."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest

from data_builders import common, fixtures, image_lists
from data_builders.prid2011 import prid2011_dataset_builder as prid


def make_prid(root: str, cam_a: int = 5, cam_b: int = 7) -> str:
    for folder, n in (("cam_a", cam_a), ("cam_b", cam_b)):
        for p in range(1, n + 1):
            fixtures.write_image(os.path.join(root, "prid_2011", "single_shot", folder, f"person_{p:04d}.png"))
    os.makedirs(os.path.join(root, "prid_2011", "multi_shot"))
    return root


def tiny(k: int = 0):
    return dataclasses.replace(
        prid.Builder.builder_configs[f"s{k}"], name=f"tiny{k}", num_cam_a=5, num_cam_b=7, num_shared=4,
        num_test_ids=2, counts={"train": (4, 2), "query": (2, 2), "gallery": (5, 5)},
    )


def test_builds_split(tmp_path):
    data = fixtures.read_splits(fixtures.build(prid.Builder, tiny(3), make_prid(str(tmp_path / "m")), str(tmp_path / "t")))
    train, test = image_lists.seeded_split(range(1, 5), 2, 3)
    assert sorted({int(e["person_id"]) for e in data["train"]}) == train
    assert [int(e["person_id"]) for e in data["query"]] == test
    assert sorted(int(e["person_id"]) for e in data["gallery"]) == sorted(test + [5, 6, 7])
    assert data["query"][0]["file_name"] == f"single_shot/cam_a/person_{test[0]:04d}.png"
    assert {int(e["camera_id"]) for e in data["gallery"]} == {1}


def test_missing_person(tmp_path):
    manual = make_prid(str(tmp_path / "m"))
    os.rename(os.path.join(manual, "prid_2011", "single_shot", "cam_b", "person_0003.png"),
              os.path.join(manual, "prid_2011", "single_shot", "cam_b", "person_0008.png"))
    with pytest.raises(common.DatasetError, match="person_0001.png .. person_0007.png"):
        fixtures.build(prid.Builder, tiny(), manual, str(tmp_path / "t"))


def test_published_counts():
    cfg = prid.Builder.builder_configs["s0"]
    assert (cfg.num_cam_a, cfg.num_cam_b, cfg.num_shared, cfg.num_test_ids) == (385, 749, 200, 100)
    assert cfg.counts["gallery"] == (649, 649)


def test_reads_zip(tmp_path):
    manual = make_prid(str(tmp_path / "m"))
    (tmp_path / "z").mkdir()
    shutil.make_archive(str(tmp_path / "z" / "prid_2011"), "zip", manual)
    builder = fixtures.build(prid.Builder, tiny(), str(tmp_path / "z"), str(tmp_path / "t"))
    assert builder.info.splits["gallery"].num_examples == 5
