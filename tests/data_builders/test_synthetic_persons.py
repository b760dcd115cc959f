"""synthetic_persons builder: builds ``tiny`` and ``multidomain_tiny`` and reads them back."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders.synthetic_persons import render
from data_builders.synthetic_persons import synthetic_persons_dataset_builder as sp


def config(name: str) -> sp.SyntheticPersonsConfig:
    return next(c for c in sp.Builder.BUILDER_CONFIGS if c.name == name)


def build(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
    builder = sp.Builder(data_dir=data_dir, file_format="array_record", config=name)
    builder.download_and_prepare()
    return builder


def read(builder: tfds.core.DatasetBuilder) -> dict[str, list[dict]]:
    out = {}
    for split in builder.info.splits:
        source = builder.as_data_source(split)
        out[split] = [source[i] for i in range(len(source))]
    return out


def ids(examples: list[dict]) -> set[int]:
    return {int(e["person_id"]) for e in examples}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return read(build("tiny", str(tmp_path_factory.mktemp("tiny_a"))))


@pytest.fixture(scope="module")
def multidomain(tmp_path_factory):
    return read(build("multidomain_tiny", str(tmp_path_factory.mktemp("multi"))))


def test_splits_and_identities(tiny):
    assert set(tiny) == {"train", "query", "gallery"}
    assert all(len(v) > 0 for v in tiny.values())
    test_ids = ids(tiny["query"]) | ids(tiny["gallery"])
    assert not ids(tiny["train"]) & test_ids
    assert min(ids(tiny["train"])) >= 1
    assert ids(tiny["query"]) <= ids(tiny["gallery"]) - {0}
    cfg = config("tiny")
    assert ids(tiny["train"]) | ids(tiny["query"]) | ids(tiny["gallery"]) == set(
        range(cfg.num_train_ids + cfg.num_test_ids + 1)
    )


def test_labels_contiguous_on_train_only(tiny):
    label_of = {int(e["person_id"]): int(e["label"]) for e in tiny["train"]}
    assert sorted(label_of.values()) == list(range(len(label_of)))
    assert all(label_of[int(e["person_id"])] == int(e["label"]) for e in tiny["train"])
    assert all(int(e["label"]) == -1 for s in ("query", "gallery") for e in tiny[s])


def test_every_query_has_cross_camera_match(tiny):
    gallery = {(int(e["person_id"]), int(e["camera_id"])) for e in tiny["gallery"]}
    seen = collections.Counter()
    for q in tiny["query"]:
        pid, cam = int(q["person_id"]), int(q["camera_id"])
        seen[(pid, cam)] += 1
        assert any(p == pid and c != cam for p, c in gallery), (pid, cam)
    assert max(seen.values()) == 1  # one query per (identity, camera)


def test_distractors_in_gallery_only(tiny):
    distractors = [e for e in tiny["gallery"] if int(e["person_id"]) == 0]
    assert len(distractors) == config("tiny").num_distractors
    assert 0 not in ids(tiny["train"]) | ids(tiny["query"])


def test_images_cameras_and_names(tiny):
    cfg = config("tiny")
    names = [e["file_name"] for s in tiny.values() for e in s]
    assert len(set(names)) == len(names)
    for examples in tiny.values():
        for e in examples:
            assert e["image"].shape == (cfg.height, cfg.width, 3)
            assert e["image"].dtype == np.uint8
            assert 0 <= int(e["camera_id"]) < cfg.num_cameras
            assert e["domain"] == b"synthetic"
    # Images are not blank: a person and a background differ.
    assert np.mean([e["image"].std() for e in tiny["train"]]) > 10


def test_deterministic(tiny, tmp_path):
    again = read(build("tiny", str(tmp_path)))
    for split, examples in tiny.items():
        first = {e["file_name"]: e["image"] for e in examples}
        second = {e["file_name"]: e["image"] for e in again[split]}
        assert first.keys() == second.keys()
        for name, image in first.items():
            np.testing.assert_array_equal(image, second[name], err_msg=name)


def test_multidomain_splits(multidomain):
    cfg = config("multidomain_tiny")
    k = cfg.num_domains
    assert set(multidomain) == {
        f"{s}_d{d}" for s in ("train", "query", "gallery") for d in range(k)
    }
    domain_ids = []
    for d in range(k):
        splits = [multidomain[f"{s}_d{d}"] for s in ("train", "query", "gallery")]
        assert all(len(v) > 0 for v in splits)
        assert {e["domain"] for v in splits for e in v} == {f"synthetic_d{d}".encode()}
        assert {int(e["camera_id"]) for v in splits for e in v} <= set(range(cfg.domain_cameras[d]))
        labels = sorted({int(e["label"]) for e in splits[0]})
        assert labels == list(range(cfg.num_train_ids))
        domain_ids.append((ids(splits[0]) | ids(splits[1]) | ids(splits[2])) - {0})
    for a in range(k):
        for b in range(a + 1, k):
            assert not domain_ids[a] & domain_ids[b]


def test_colour_alone_is_ambiguous():
    cfg = config("default")
    items = [sp.Item(pid, 0, 0, -1) for pid in range(1, cfg.num_train_ids + 1)]
    people = [sp.identity(cfg, 0, it) for it in items]
    by_top = collections.defaultdict(list)
    for p in people:
        by_top[p.top].append(p)
    assert len(by_top) <= len(render.PALETTE)
    # Many people share a top colour; among them, patterns and accessories differ.
    shared = max(by_top.values(), key=len)
    assert len(shared) >= 10
    assert len({(p.top_texture, p.backpack >= 0, p.bag >= 0, p.hat >= 0) for p in shared}) > 5
    same_outfit = collections.Counter((p.top, p.bottom) for p in people)
    assert same_outfit.most_common(1)[0][1] >= 2


def test_attributes_on_every_split_follow_the_identity(tiny, multidomain):
    names = sp.ATTRIBUTE_NAMES
    assert len(names) == 8
    for name, data in (("tiny", tiny), ("multidomain_tiny", multidomain)):
        cfg = config(name)
        for split, examples in data.items():
            domain = int(split.rsplit("_d", 1)[1]) if "_d" in split else 0
            per_person = collections.defaultdict(set)
            for e in examples:
                a = e["attributes"]
                assert a.shape == (8,) and a.dtype == np.int8 and set(a.tolist()) <= {0, 1}
                pid, index = int(e["person_id"]), int(e["file_name"].decode().rsplit("_", 1)[1][:4])
                person = sp.identity(cfg, domain, sp.Item(pid, 0, index, -1))
                np.testing.assert_array_equal(a, sp.attributes(person), err_msg=e["file_name"])
                if pid:
                    per_person[pid].add(a.tobytes())
            # Identity-level: every image of a person carries the same vector.
            assert all(len(v) == 1 for v in per_person.values())


def test_attribute_definitions():
    cfg = config("default")
    people = [sp.identity(cfg, 0, sp.Item(pid, 0, 0, -1)) for pid in range(1, 301)]
    got = np.stack([sp.attributes(p) for p in people])
    by_name = dict(zip(sp.ATTRIBUTE_NAMES, got.T))
    np.testing.assert_array_equal(by_name["backpack"], [p.backpack >= 0 for p in people])
    np.testing.assert_array_equal(by_name["shoulder_bag"], [p.bag >= 0 for p in people])
    np.testing.assert_array_equal(by_name["hat"], [p.hat >= 0 for p in people])
    dark = {render.COLOUR_NAMES.index("black"), render.COLOUR_NAMES.index("navy")}
    np.testing.assert_array_equal(by_name["top_dark"], [p.top in dark for p in people])
    np.testing.assert_array_equal(by_name["bottom_dark"], [p.bottom in dark for p in people])
    np.testing.assert_array_equal(
        by_name["top_patterned"], [p.top_texture in (render.HSTRIPES, render.VSTRIPES, render.CHECKS) for p in people])
    np.testing.assert_array_equal(by_name["top_logo"], [p.top_texture == render.LOGO for p in people])
    np.testing.assert_array_equal(by_name["shorts"], [p.shorts for p in people])
    # Every attribute occurs and is not universal: each is something to learn.
    assert ((got.mean(0) > 0.1) & (got.mean(0) < 0.9)).all()
