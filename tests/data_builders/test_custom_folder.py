"""custom_folder builder: pattern (with cam / cam<k> / split groups) and CSV descriptions."""

from __future__ import annotations

import os

import pytest

from data_builders import common, fixtures, image_lists, registry
from data_builders.cuhk01 import fixture as cuhk01_fixture
from data_builders.custom_folder import custom_folder_dataset_builder as custom

CUHK01_PATTERN = r"campus/(?P<pid>\d{4})(?:(?P<cam0>00[12])|(?P<cam1>00[34]))\.png"


def build(tmp_path, manual: str, **fields):
    cfg = custom.CustomConfig(name=fields.pop("name", "t"), **fields)
    return fixtures.read_splits(fixtures.build(custom.Builder, cfg, manual, str(tmp_path / "t")))


def test_cuhk01_layout_from_pattern_alone(tmp_path):
    manual = cuhk01_fixture.make_campus(str(tmp_path / "m"), num_ids=6)
    fixtures.write_text(os.path.join(manual, "README.md"), ["not an image"])
    data = build(tmp_path, manual, pattern=CUHK01_PATTERN, domain="cuhk01", num_test_ids=3, split_index=2,
                 encoding_format="png")
    _, test = image_lists.seeded_split(range(1, 7), 3, 2)
    assert sorted({int(e["person_id"]) for e in data["query"]}) == test
    assert {(e["file_name"][-7:-4], int(e["camera_id"])) for e in data["query"]} <= {("001", 0), ("002", 0)}
    assert {int(e["camera_id"]) for e in data["gallery"]} == {1} and len(data["gallery"]) == 6
    assert len(data["train"]) == 12 and data["train"][0]["domain"] == "cuhk01"


def test_split_and_cam_groups(tmp_path):
    manual = str(tmp_path / "m")
    for rel in ("bounding_box_train/0002_c1_x.jpg", "bounding_box_train/0002_c3_x.jpg",
                "query/0005_c2_y.jpg", "bounding_box_test/0005_c1_z.jpg"):
        fixtures.write_image(os.path.join(manual, rel))
    data = build(tmp_path, manual, pattern=r"(?P<split>[a-z_]+)/(?P<pid>\d+)_c(?P<cam>\d)_\w+\.jpg")
    assert sorted(data) == ["gallery", "query", "train"]
    assert [int(e["camera_id"]) for e in data["train"]] == [0, 2] and int(data["train"][0]["label"]) == 0
    assert int(data["query"][0]["person_id"]) == 5


def test_csv(tmp_path):
    manual = str(tmp_path / "m")
    for rel in ("a/1.png", "a/2.png", "b/3.png"):
        fixtures.write_image(os.path.join(manual, rel))
    fixtures.write_text(os.path.join(manual, "labels.csv"),
                        ["path,person_id,camera_id", "a/1.png,7,0", "a/2.png,7,1", "b/3.png,9,0"])
    data = build(tmp_path, manual, csv="labels.csv")
    assert list(data) == ["train"]
    assert sorted((int(e["person_id"]), int(e["label"])) for e in data["train"]) == [(7, 0), (7, 0), (9, 1)]


@pytest.mark.parametrize("fields, match", [
    ({"pattern": r"(?P<pid>\d+)\.png"}, "does not match the pattern"),
    ({"pattern": r"a/(\d+)\.png"}, r"named group \(\?P<pid>"),
    ({"csv": "missing.csv"}, "missing.csv' does not exist"),
    ({}, "exactly one of"),
])
def test_bad_descriptions(tmp_path, fields, match):
    manual = str(tmp_path / "m")
    fixtures.write_image(os.path.join(manual, "a", "1.png"))
    with pytest.raises(common.DatasetError, match=match):
        build(tmp_path, manual, **fields)


def test_prepared_copy_reads_back_by_name(tmp_path):
    manual = cuhk01_fixture.make_campus(str(tmp_path / "m"), num_ids=4)
    cfg = custom.CustomConfig(name="campus", pattern=CUHK01_PATTERN, num_test_ids=2, encoding_format="png")
    registry.prepare("custom_folder", data_dir=str(tmp_path / "t"), manual_dir=manual, config=cfg)
    builder = registry.get_builder("custom_folder/campus", data_dir=str(tmp_path / "t"))
    assert builder.info.splits["gallery"].num_examples == 4
    with pytest.raises(common.DatasetError, match="unknown config 'other' and no prepared copy"):
        registry.get_builder("custom_folder/other", data_dir=str(tmp_path / "t"))
