"""DukeMTMC-reID builder on a fixture in the real DukeMTMC-reID/bounding_box_* layout."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from data_builders import common, fixtures
from data_builders.dukemtmc_reid import dukemtmc_reid_dataset_builder as duke

LAYOUT = {
    "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0008_c8_f0000101.jpg"],
    "query": ["0005_c1_f0041234.jpg", "0009_c3_f0120000.jpg"],
    "bounding_box_test": ["0005_c4_f0050000.jpg", "0009_c6_f0130000.jpg", "0770_c7_f0000001.jpg"],
}


def make_duke(root: str) -> str:
    for folder, names in LAYOUT.items():
        for n in names:
            fixtures.write_image(os.path.join(root, "DukeMTMC-reID", folder, n))
    return root


def tiny(**changes):
    base = duke.Builder.builder_configs["standard"]
    kw = {"counts": {"train": (3, 2), "query": (2, 2), "gallery": (3, 3)}, "num_cameras": 8, **changes}
    return dataclasses.replace(base, name="tiny", **kw)


def test_published_counts():
    cfg = duke.Builder.builder_configs["standard"]
    assert cfg.counts["gallery"] == (17661, 1110) and cfg.num_cameras == 8


def test_builds_splits(tmp_path):
    data = fixtures.read_splits(fixtures.build(duke.Builder, tiny(), make_duke(str(tmp_path / "m")), str(tmp_path / "t")))
    assert [(int(e["person_id"]), int(e["camera_id"]), int(e["label"])) for e in data["train"]] == [
        (1, 1, 0), (1, 4, 0), (8, 7, 1)]
    assert data["gallery"][-1]["file_name"] == "bounding_box_test/0770_c7_f0000001.jpg"
    assert {int(e["label"]) for e in data["query"] + data["gallery"]} == {-1}
    assert all((e["attributes"] == -1).all() and e["attributes"].shape == (23,)
               for s in data.values() for e in s)


def test_attributes_from_duke_attribute_mat(tmp_path):
    manual = make_duke(str(tmp_path / "m"))
    fields = duke.ATTRIBUTES.fields
    one = {f: 1 for f in fields}
    tables = {
        # 0001: female with a backpack and a white top; 0008: as the released file's few
        # train identities, 'top' is 0 (unknown).
        "train": {"image_index": ["0001", "0008"],
                  **{f: [2 if f in ("gender", "backpack", "upwhite") else 1, 0 if f == "top" else 2]
                     for f in fields}},
        # The test table covers the gallery distractor 0770 too.
        "test": {"image_index": ["0005", "0009", "0770"],
                 **{f: [2 if f == "shoes" else 1, one[f], 2 if f == "downred" else 1] for f in fields}},
    }
    fixtures.write_attribute_mat(os.path.join(manual, "duke_attribute.mat"), "duke_attribute", tables)
    data = fixtures.read_splits(fixtures.build(duke.Builder, tiny(), manual, str(tmp_path / "t")))
    names = duke.ATTRIBUTE_NAMES
    assert len(names) == 23

    def vec(*ones, unknown=()):
        return np.array([-1 if n in unknown else 1 if n in ones else 0 for n in names], np.int8)

    want = {
        1: vec("female", "backpack", "up_white"),
        8: vec(*names, unknown=("long_top",)),
        5: vec("light_shoes"),
        9: vec(),
        770: vec("down_red"),
    }
    for split in data.values():
        for e in split:
            np.testing.assert_array_equal(e["attributes"], want[int(e["person_id"])], err_msg=e["file_name"])


@pytest.mark.parametrize("case, match", [
    ("missing", "no folder holding bounding_box_train/"),
    ("name", "unexpected file .*0001_c2.jpg"),
    ("ids", "found 2 gallery identities, the published dataset has 3"),
])
def test_bad_input(tmp_path, case, match):
    manual = make_duke(str(tmp_path / "m"))
    cfg = tiny()
    if case == "missing":
        os.rename(os.path.join(manual, "DukeMTMC-reID", "bounding_box_train"), os.path.join(manual, "DukeMTMC-reID", "train"))
    elif case == "name":
        fixtures.write_image(os.path.join(manual, "DukeMTMC-reID", "query", "0001_c2.jpg"))
    elif case == "ids":
        os.remove(os.path.join(manual, "DukeMTMC-reID", "bounding_box_test", "0770_c7_f0000001.jpg"))
        cfg = tiny(counts={"gallery": (None, 3)})
    with pytest.raises(common.DatasetError, match=match):
        fixtures.build(duke.Builder, cfg, manual, str(tmp_path / "t"))
