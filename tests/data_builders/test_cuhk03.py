"""CUHK03 builder on a fixture cuhk-03.mat (HDF5, MATLAB v7.3 layout) + CUHK03-NP files."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import scipy.io

from data_builders import common, fixtures
from data_builders.cuhk03 import cuhk03_dataset_builder as cuhk03

h5py = pytest.importorskip("h5py")

PERSONS = {1: 3, 2: 2}  # camera pair -> persons
COLUMNS = (0, 1, 5, 6)  # two images per view
EMPTY = (2, 2, 6)  # pair 2, person 2 has no image in column 6


def colour(pair: int, person: int, column: int) -> tuple[int, int, int]:
    return (pair * 40, person * 30, column * 20)


def make_cuhk03(root: str) -> str:
    os.makedirs(os.path.join(root, "cuhk03_release"))
    with h5py.File(os.path.join(root, "cuhk03_release", cuhk03.MAT), "w") as f:
        count = [0]

        def put(arr):
            count[0] += 1
            f[f"#refs#/{count[0]}"] = arr
            return f[f"#refs#/{count[0]}"].ref

        for boxes in ("labeled", "detected"):
            pair_refs = []
            for pair, n in PERSONS.items():
                cells = np.empty((10, n), dtype=h5py.ref_dtype)
                for person in range(1, n + 1):
                    for column in range(10):
                        if column in COLUMNS and (pair, person, column) != EMPTY:
                            img = np.full((8, 4, 3), colour(pair, person, column), np.uint8)
                            cells[column, person - 1] = put(img.T)  # MATLAB stores arrays transposed
                        else:
                            cells[column, person - 1] = put(np.zeros(2, np.uint64))
                pair_refs.append(put(cells))
            f.create_dataset(boxes, data=np.array([pair_refs], dtype=h5py.ref_dtype))
        tests = [put(np.array([[1, 2], [2, 1]] if k % 2 == 0 else [[1, 1], [2, 2]], float).T) for k in range(20)]
        f.create_dataset("testsets", data=np.array([tests], dtype=h5py.ref_dtype))
    names = [cuhk03.image_name(p, q, c) for p, n in PERSONS.items() for q in range(1, n + 1) for c in COLUMNS
             if (p, q, c) != EMPTY]
    files = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        files[i, 0] = np.array([n])
    train = [i + 1 for i, n in enumerate(names) if n[:5] in ("1_001", "1_003")]
    query = [i + 1 for i, n in enumerate(names) if n[:5] not in ("1_001", "1_003") and n[6] == "1"]
    gallery = [i + 1 for i, n in enumerate(names) if n[:5] not in ("1_001", "1_003") and n[6] == "2"]
    for boxes in ("labeled", "detected"):
        scipy.io.savemat(os.path.join(root, f"cuhk03_new_protocol_config_{boxes}.mat"), {
            "filelist": files, "labels": np.arange(len(names))[:, None],
            "train_idx": np.array(train)[:, None], "query_idx": np.array(query)[:, None],
            "gallery_idx": np.array(gallery)[:, None],
        })
    return root


def tiny(name: str, **counts):
    return dataclasses.replace(cuhk03.Builder.builder_configs[name], name=f"tiny_{name}", num_ids=5,
                               num_pairs=2, counts=counts)


def test_np_protocol(tmp_path):
    cfg = tiny("np_detected", train=(8, 2), query=(6, 3), gallery=(5, 3))
    data = fixtures.read_splits(fixtures.build(cuhk03.Builder, cfg, make_cuhk03(str(tmp_path / "m")), str(tmp_path / "t")))
    assert sorted({int(e["person_id"]) for e in data["train"]}) == [1001, 1003]
    assert {int(e["camera_id"]) for e in data["query"]} == {0}
    e = data["gallery"][0]
    assert e["file_name"] == "detected/1_002_2_06.png"
    assert tuple(e["image"][0, 0]) == colour(1, 2, 5) and e["image"].shape == (8, 4, 3)


def test_classic_protocol(tmp_path):
    cfg = tiny("classic_labeled_s1", train=(None, 3), query=(None, 2), gallery=(None, 2))
    data = fixtures.read_splits(fixtures.build(cuhk03.Builder, cfg, make_cuhk03(str(tmp_path / "m")), str(tmp_path / "t")))
    assert {int(e["person_id"]) for e in data["query"]} == {1001, 2002}
    assert len(data["gallery"]) == 3  # person 2002 misses one second-view image
    assert sorted({int(e["label"]) for e in data["train"]}) == [0, 1, 2]


def test_missing_protocol_file(tmp_path):
    manual = make_cuhk03(str(tmp_path / "m"))
    os.remove(os.path.join(manual, "cuhk03_new_protocol_config_labeled.mat"))
    with pytest.raises(common.DatasetError, match="cuhk03_new_protocol_config_labeled.mat' is missing"):
        fixtures.build(cuhk03.Builder, tiny("np_labeled"), manual, str(tmp_path / "t"))


def test_configs_and_counts():
    cfgs = cuhk03.Builder.builder_configs
    assert len(cfgs) == 44 and cuhk03.Builder.DEFAULT_CONFIG_NAME == "np_labeled"
    assert cfgs["np_labeled"].counts["gallery"] == (5328, 700)
    assert cfgs["np_detected"].counts["train"] == (7365, 767) and cfgs["classic_detected_s19"].split_index == 19


def test_np_folders(tmp_path):
    top = tmp_path / "m" / "cuhk03-np" / "detected"
    for folder, names in {"bounding_box_train": ["0001_c1_1.png", "0001_c2_2.png", "0005_c1_1.png"],
                          "query": ["0002_c1_1.png"], "bounding_box_test": ["0002_c2_2.png", "0002_c2_3.png"]}.items():
        for n in names:
            fixtures.write_image(str(top / folder / n))
    cfg = dataclasses.replace(cuhk03.Builder.builder_configs["np_detected_folders"], name="tiny_folders",
                              counts={"train": (3, 2), "query": (1, 1), "gallery": (2, 1)})
    data = fixtures.read_splits(fixtures.build(cuhk03.Builder, cfg, str(tmp_path / "m"), str(tmp_path / "t")))
    assert [(int(e["person_id"]), int(e["camera_id"]), int(e["label"])) for e in data["train"]] == [
        (1, 0, 0), (1, 1, 0), (5, 0, 1)]
    assert data["gallery"][0]["file_name"] == "detected/bounding_box_test/0002_c2_2.png"
