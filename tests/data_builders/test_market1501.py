"""Market-1501 builder on a fixture in the real bounding_box_* layout."""

from __future__ import annotations

import dataclasses
import os
import zipfile

import numpy as np
import pytest

from data_builders import common, fixtures
from data_builders.market1501 import market1501_dataset_builder as market

TRAIN = ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s2_010101_02.jpg"]
QUERY = ["0003_c1s1_000151_01.jpg", "0005_c6s2_000700_01.jpg"]
GALLERY = ["0003_c4s1_000160_02.jpg", "0005_c5s3_000010_01.jpg", "0000_c1s1_000151_05.jpg",
           "-1_c2s1_000100_04.jpg"]


def make_market(root: str, extra: dict | None = None) -> str:
    top = os.path.join(root, "Market-1501-v15.09.15")
    for folder, names in {"bounding_box_train": TRAIN, "query": QUERY,
                          "bounding_box_test": GALLERY, **(extra or {})}.items():
        for n in names:
            fixtures.write_image(os.path.join(top, folder, n))
    open(os.path.join(top, "bounding_box_train", "Thumbs.db"), "w").close()  # real archives have it
    return root


def tiny(name: str = "tiny", base: str = "standard", **changes) -> market.MarketConfig:
    counts = {"train": (3, 2), "query": (2, 2), "gallery": (3, 3)}
    if base == "with_500k":
        counts.pop("gallery")
    cfg = market.Builder.builder_configs[base]
    return dataclasses.replace(cfg, name=name, counts=counts, **changes)


def test_default_config_has_published_counts():
    cfg = market.Builder.builder_configs["standard"]
    assert cfg.counts == {"train": (12936, 751), "query": (3368, 750), "gallery": (15913, 751)}
    assert cfg.num_cameras == 6


@pytest.mark.parametrize("zipped", [False, True])
def test_builds_splits(tmp_path, zipped):
    manual = make_market(str(tmp_path / "m"))
    if zipped:
        zdir = tmp_path / "z"
        zdir.mkdir()
        with zipfile.ZipFile(zdir / "Market-1501-v15.09.15.zip", "w") as zf:
            for dp, _, fs in os.walk(manual):
                for f in fs:
                    zf.write(os.path.join(dp, f), os.path.relpath(os.path.join(dp, f), manual))
        manual = str(zdir)
    data = fixtures.read_splits(fixtures.build(market.Builder, tiny(), manual, str(tmp_path / "t")))
    assert [e["file_name"] for e in data["train"]] == sorted(f"bounding_box_train/{n}" for n in TRAIN)
    assert {(int(e["person_id"]), int(e["label"])) for e in data["train"]} == {(2, 0), (7, 1)}
    assert sorted(int(e["camera_id"]) for e in data["query"]) == [0, 5]
    gal = {int(e["person_id"]) for e in data["gallery"]}
    assert gal == {0, 3, 5}  # junk -1 dropped, distractor 0 kept
    assert {int(e["label"]) for e in data["gallery"] + data["query"]} == {-1}
    assert data["query"][0]["domain"] == "market1501" and data["query"][0]["image"].shape == (8, 4, 3)
    # Without market_attribute.mat every attribute is unknown.
    for e in data["train"] + data["query"] + data["gallery"]:
        assert e["attributes"].shape == (30,) and e["attributes"].dtype == np.int8
        assert (e["attributes"] == -1).all()


def test_with_500k_adds_distractors(tmp_path):
    manual = make_market(str(tmp_path / "m"), {"images": ["0000_c3s1_000001_00.jpg"]})
    data = fixtures.read_splits(fixtures.build(market.Builder, tiny(base="with_500k"), manual, str(tmp_path / "t")))
    assert "images/0000_c3s1_000001_00.jpg" in [e["file_name"] for e in data["gallery"]]


@pytest.mark.parametrize("case, match", [
    ("no_query", "query' is missing"),
    ("stray", "unexpected file .*notes.txt"),
    ("bad_camera", "names camera 7"),
    ("broken", "cannot read image .*0007_c3s2_010101_02.jpg"),
    ("count", "found 3 train images, the published dataset has 4"),
    ("cameras", "found 6 cameras, the published dataset has 5"),
])
def test_bad_input(tmp_path, case, match):
    manual = make_market(str(tmp_path / "m"))
    top = os.path.join(manual, "Market-1501-v15.09.15")
    cfg = tiny()
    if case == "no_query":
        for n in QUERY:
            os.remove(os.path.join(top, "query", n))
        os.rmdir(os.path.join(top, "query"))
    elif case == "stray":
        open(os.path.join(top, "query", "notes.txt"), "w").close()
    elif case == "bad_camera":
        fixtures.write_image(os.path.join(top, "query", "0003_c7s1_000151_01.jpg"))
    elif case == "broken":
        with open(os.path.join(top, "bounding_box_train", TRAIN[2]), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0garbage")
    elif case == "count":
        cfg = dataclasses.replace(cfg, counts={"train": (4, 2)})
    elif case == "cameras":
        cfg = dataclasses.replace(cfg, num_cameras=5)
    with pytest.raises(common.DatasetError, match=match):
        fixtures.build(market.Builder, cfg, manual, str(tmp_path / "t"))


# Identity-level annotations in the layout of vana77/Market-1501_Attribute: 1 = no (first
# option), 2 = yes (second option), age 1..4.
_FIELDS = market.ATTRIBUTES.fields


def _row(twos=(), age=1):
    return {f: (age if f == "age" else 2 if f in twos else 1) for f in _FIELDS}


def _market_mat(path, drop=None):
    people = {
        "train": {"0002": _row(("gender", "hat", "upred"), age=3), "0007": _row(_FIELDS, age=1)},
        "test": {"0003": _row(("backpack", "downblue"), age=4), "0005": _row((), age=2)},
    }
    tables = {}
    for split, rows in people.items():
        tables[split] = {"image_index": list(rows)}
        for f in _FIELDS:
            if (split, f) != drop:
                tables[split][f] = [r[f] for r in rows.values()]
    return fixtures.write_attribute_mat(path, "market_attribute", tables)


def _expected(*ones):
    return np.array([1 if n in ones else 0 for n in market.ATTRIBUTE_NAMES], np.int8)


@pytest.mark.parametrize("where", ["manual_dir", "clone"])
def test_attributes_from_market_attribute_mat(tmp_path, where):
    manual = make_market(str(tmp_path / "m"))
    folder = manual if where == "manual_dir" else os.path.join(manual, "Market-1501_Attribute")
    _market_mat(os.path.join(folder, "market_attribute.mat"))
    data = fixtures.read_splits(fixtures.build(market.Builder, tiny(), manual, str(tmp_path / "t")))
    assert len(market.ATTRIBUTE_NAMES) == 30
    by_pid = {}
    for split in ("train", "query", "gallery"):
        for e in data[split]:
            by_pid.setdefault((split, int(e["person_id"])), []).append(e["attributes"])
    want = {
        2: _expected("female", "hat", "up_red", "age_adult"),
        7: _expected(*[n for n in market.ATTRIBUTE_NAMES if not n.startswith("age_")], "age_young"),
        3: _expected("backpack", "down_blue", "age_old"),
        5: _expected("age_teenager"),
    }
    for (split, pid), rows in by_pid.items():
        for got in rows:
            if pid == 0:  # the distractor has no annotation
                np.testing.assert_array_equal(got, -1)
            else:  # train images from the train table, query/gallery from the test table
                np.testing.assert_array_equal(got, want[pid], err_msg=f"{split} {pid}")


def test_malformed_attribute_file(tmp_path):
    manual = make_market(str(tmp_path / "m"))
    path = _market_mat(os.path.join(manual, "market_attribute.mat"), drop=("test", "hat"))
    with pytest.raises(common.DatasetError) as err:
        fixtures.build(market.Builder, tiny(), manual, str(tmp_path / "t"))
    msg = str(err.value)
    assert "\n" not in msg
    assert path in msg and "no field 'hat' in market_attribute.test" in msg
    assert "re-download it, or remove it to build without attributes" in msg
