"""CUHK01 builder on a 12-identity fixture in the real ``campus/PPPPIII.png`` layout."""

from __future__ import annotations

import os
import zipfile

import pytest
import tensorflow_datasets as tfds

from data_builders import common
from data_builders.cuhk01 import cuhk01_dataset_builder as cuhk01
from data_builders.cuhk01 import fixture

NUM_IDS = 12
NUM_TEST = 5


def tiny_config(name: str = "tiny", num_ids: int = NUM_IDS, split_index: int = 0) -> cuhk01.Cuhk01Config:
    return cuhk01.Cuhk01Config(name=name, num_test_ids=NUM_TEST, split_index=split_index, num_ids=num_ids)


def build(manual_dir: str, data_dir: str, config: cuhk01.Cuhk01Config | None = None) -> tfds.core.DatasetBuilder:
    builder = cuhk01.Builder(config=config or tiny_config(), data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


def read_split(builder: tfds.core.DatasetBuilder, split: str) -> list[dict]:
    source = builder.as_data_source(split)
    return [source[i] for i in range(len(source))]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuhk01")
    manual = fixture.make_campus(str(root / "manual"), NUM_IDS)
    builder = build(manual, str(root / "tfds"))
    return builder, {s: read_split(builder, s) for s in ("train", "query", "gallery")}


def test_default_config_expects_published_counts():
    cfg = cuhk01.Builder.builder_configs[cuhk01.Builder.DEFAULT_CONFIG_NAME]
    assert (cfg.name, cfg.num_ids, cfg.images_per_camera, cfg.num_test_ids) == ("p486_s0", 971, 2, 486)
    assert cuhk01.Builder.builder_configs["p100_s9"].num_test_ids == 100
    assert len(cuhk01.Builder.builder_configs) == 20


def test_splits_follow_protocol(built):
    _, data = built
    train, query, gallery = data["train"], data["query"], data["gallery"]
    train_ids = {int(e["person_id"]) for e in train}
    test_ids = {int(e["person_id"]) for e in query}
    exp_train, exp_test = cuhk01.identity_split(list(range(1, NUM_IDS + 1)), NUM_TEST, 0)
    assert sorted(train_ids) == exp_train and sorted(test_ids) == exp_test
    assert {int(e["person_id"]) for e in gallery} == test_ids
    assert not train_ids & test_ids
    assert len(train) == 4 * len(train_ids) and len(query) == len(gallery) == 2 * NUM_TEST
    assert {int(e["camera_id"]) for e in query} == {0}
    assert {int(e["camera_id"]) for e in gallery} == {1}
    # Contiguous labels in sorted person-id order on train, -1 elsewhere.
    label_of = {int(e["person_id"]): int(e["label"]) for e in train}
    assert [label_of[p] for p in sorted(label_of)] == list(range(len(label_of)))
    assert {int(e["label"]) for e in query + gallery} == {-1}


def test_examples_carry_file_and_pixels(built):
    _, data = built
    for e in data["train"] + data["query"] + data["gallery"]:
        name = e["file_name"].decode()
        assert e["domain"] == b"cuhk01"
        pid, img = int(name[7:11]), int(name[11:14])
        assert name == f"campus/{pid:04d}{img:03d}.png" and int(e["person_id"]) == pid
        assert int(e["camera_id"]) == (img - 1) // 2
        assert e["image"].shape == (8, 4, 3)
        assert tuple(e["image"][0, 0]) == fixture.colour(pid, img)


def test_identity_split_is_seeded_and_protocols_nest():
    ids = list(range(1, 972))
    a = cuhk01.identity_split(ids, 486, 3)
    assert a == cuhk01.identity_split(ids, 486, 3)
    assert a != cuhk01.identity_split(ids, 486, 4)
    assert (len(a[0]), len(a[1])) == (485, 486)
    train100, test100 = cuhk01.identity_split(ids, 100, 3)
    assert (len(train100), len(test100)) == (871, 100) and set(test100) <= set(a[1])


@pytest.mark.parametrize("shape", ["campus_itself", "zip"])
def test_reads_campus_folder_or_zip(tmp_path, shape):
    manual = fixture.make_campus(str(tmp_path / "src"))
    if shape == "campus_itself":
        manual = os.path.join(manual, "campus")
    else:
        zdir = tmp_path / "zipped"
        zdir.mkdir()
        with zipfile.ZipFile(zdir / "CUHK01.zip", "w") as zf:
            for f in sorted(os.listdir(os.path.join(manual, "campus"))):
                zf.write(os.path.join(manual, "campus", f), f"CUHK01/campus/{f}")
        manual = str(zdir)
    builder = build(manual, str(tmp_path / "tfds"))
    assert builder.info.splits["query"].num_examples == 2 * NUM_TEST
    assert read_split(builder, "gallery")[0]["file_name"].decode().startswith("campus/")


def _truncate(root: str) -> str:
    path = os.path.join(root, "campus", "0003002.png")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    return "0003002.png"


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing_dir", "does not exist or is empty"),
        ("empty_dir", "does not exist or is empty"),
        ("no_campus", "no campus/ folder"),
        ("stray_file", "unexpected file 'notes.txt'"),
        ("bad_index", "unexpected file '0002005.png'"),
        ("truncated", "0003002.png"),
        ("missing_image", "found 47 images, the published dataset has 48"),
        ("wrong_count", "found 48 images, the published dataset has 52"),
    ],
)
def test_bad_input_raises_dataset_error(tmp_path, case, match):
    manual = str(tmp_path / "manual")
    config = tiny_config()
    if case == "empty_dir":
        os.makedirs(manual)
    elif case == "no_campus":
        os.makedirs(os.path.join(manual, "images"))
        open(os.path.join(manual, "readme.txt"), "w").close()
    elif case != "missing_dir":
        fixture.make_campus(manual)
        campus = os.path.join(manual, "campus")
        if case == "stray_file":
            open(os.path.join(campus, "notes.txt"), "w").close()
        elif case == "bad_index":
            os.rename(os.path.join(campus, "0002004.png"), os.path.join(campus, "0002005.png"))
        elif case == "truncated":
            _truncate(manual)
        elif case == "missing_image":
            os.remove(os.path.join(campus, "0004001.png"))
        elif case == "wrong_count":
            config = tiny_config("tiny13", num_ids=13)
    with pytest.raises(common.DatasetError, match=match) as info:
        build(manual, str(tmp_path / "tfds"), config)
    assert "\n" not in str(info.value)
    # Nothing half-written is left that a later run could mistake for a prepared dataset.
    assert not list((tmp_path / "tfds").glob("cuhk01/*/*/dataset_info.json"))
