"""synthetic_persons builder: builds ``tiny``, ``multidomain_tiny`` and ``video_tiny`` and
reads them back."""

from __future__ import annotations

import collections
import hashlib
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders.synthetic_persons import render, tracklet_render
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


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return read(build("video_tiny", str(tmp_path_factory.mktemp("video_a"))))


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


# ---------------------------------------------------------------------------- images unchanged

# sha256 over the pixels of every ``tiny`` image in plan order, recorded with the renderer
# as it was before the video configs (gait and tracklets) were added. Pure NumPy (no BLAS).
TINY_PIXELS_SHA256 = "0084b4352b2243856aa23428ca63ca43a3435e2b5130d1a19de141056e5e77ef"


def test_image_pixels_unchanged_by_video_rendering():
    cfg = config("tiny")
    styles = sp.cameras(cfg, 0)
    digest = hashlib.sha256()
    for items in sp.plan(cfg, 0).values():
        for item in items:
            digest.update(sp.render_item(cfg, 0, item, styles).tobytes())
    assert digest.hexdigest() == TINY_PIXELS_SHA256


def test_gait_is_optional_and_moves_the_limbs():
    style = render.domain_style(0, 1)
    person = render.sample_identity(np.random.default_rng(3), style)

    def draw(view, gait):
        img = np.zeros((128, 64, 3), np.float32)
        render._person(img, person, view, 10.0, 120.0, 32.0, gait=gait)
        return img

    for view in (render.FRONT, render.BACK, render.SIDE):
        standing = np.zeros((128, 64, 3), np.float32)
        render._person(standing, person, view, 10.0, 120.0, 32.0)
        np.testing.assert_array_equal(standing, draw(view, None))
        assert not np.array_equal(draw(view, np.pi / 2), draw(view, -np.pi / 2))


# ---------------------------------------------------------------------------- video

FRAME_NAME = re.compile(r"^(-?\d{4,})_c(\d+)_t(\d{4})_f(\d{3})\.png$")


def tracklets(examples: list[dict]) -> list[list[dict]]:
    """The frames of each tracklet, in stored order, checking that they are consecutive."""
    out: list[list[dict]] = []
    for e in examples:
        if out and int(out[-1][0]["tracklet_id"]) == int(e["tracklet_id"]):
            out[-1].append(e)
        else:
            out.append([e])
    return out


def test_video_tracklet_layout(video):
    cfg = config("video_tiny")
    lo, hi = cfg.frames_per_tracklet
    assert set(video) == {"train", "query", "gallery"}
    names = [e["file_name"].decode() for v in video.values() for e in v]
    assert len(set(names)) == len(names)
    for split, examples in video.items():
        tracks = tracklets(examples)
        # Contiguous ids in written order, each tracklet's frames together and in order.
        assert [int(t[0]["tracklet_id"]) for t in tracks] == list(range(len(tracks))), split
        for t in tracks:
            assert [int(e["frame_id"]) for e in t] == list(range(len(t)))
            assert lo <= len(t) <= hi
            assert len({int(e["person_id"]) for e in t}) == 1
            assert len({int(e["camera_id"]) for e in t}) == 1
            assert len({int(e["label"]) for e in t}) == 1
            for e in t:
                assert e["image"].shape == (cfg.height, cfg.width, 3)
                assert 0 <= int(e["camera_id"]) < cfg.num_cameras
                assert e["domain"] == b"synthetic"
                m = FRAME_NAME.match(e["file_name"].decode())
                assert m, e["file_name"]
                pid, cam, _, frame = map(int, m.groups())
                assert (pid, cam, frame) == (
                    int(e["person_id"]), int(e["camera_id"]), int(e["frame_id"])
                )


def test_video_identities_labels_and_queries(video):
    cfg = config("video_tiny")
    train_ids = ids(video["train"])
    assert train_ids == set(range(1, cfg.num_train_ids + 1))
    assert ids(video["query"]) == set(
        range(cfg.num_train_ids + 1, cfg.num_train_ids + cfg.num_test_ids + 1)
    )
    assert ids(video["gallery"]) == ids(video["query"]) | {0, -1}
    assert not train_ids & (ids(video["query"]) | ids(video["gallery"]))
    # Labels 0..N-1 on train (one per identity), -1 elsewhere.
    label_of = {int(e["person_id"]): int(e["label"]) for e in video["train"]}
    assert sorted(label_of.values()) == list(range(cfg.num_train_ids))
    assert all(label_of[int(e["person_id"])] == int(e["label"]) for e in video["train"])
    assert all(int(e["label"]) == -1 for s in ("query", "gallery") for e in video[s])
    # One query tracklet per (identity, camera), each with a cross-camera gallery match.
    gallery = {(int(t[0]["person_id"]), int(t[0]["camera_id"])) for t in tracklets(video["gallery"])}
    queries = collections.Counter(
        (int(t[0]["person_id"]), int(t[0]["camera_id"])) for t in tracklets(video["query"])
    )
    assert max(queries.values()) == 1
    for pid, cam in queries:
        assert any(p == pid and c != cam for p, c in gallery), (pid, cam)
    # Distractor and junk tracklets, in the gallery only.
    kinds = collections.Counter(int(t[0]["person_id"]) for t in tracklets(video["gallery"]))
    assert (kinds[0], kinds[-1]) == (cfg.num_distractors, cfg.num_junk)


def test_video_attributes_follow_the_person(video):
    cfg = config("video_tiny")
    for examples in video.values():
        for t in tracklets(examples):
            e = t[0]
            index = int(FRAME_NAME.match(e["file_name"].decode()).group(3))
            planned = sp.Tracklet(int(e["person_id"]), int(e["camera_id"]), index, -1, len(t))
            want = sp.attributes(sp.tracklet_identity(cfg, 0, planned))
            for f in t:
                np.testing.assert_array_equal(f["attributes"], want)


def test_video_matches_the_plan(video):
    cfg = config("video_tiny")
    for split, planned in sp.plan_tracklets(cfg, 0).items():
        stored = tracklets(video[split])
        assert [(t.person_id, t.camera_id, t.num_frames) for t in planned] == [
            (int(t[0]["person_id"]), int(t[0]["camera_id"]), len(t)) for t in stored
        ]


def test_video_deterministic(video, tmp_path):
    again = read(build("video_tiny", str(tmp_path)))
    assert again.keys() == video.keys()
    for split, examples in video.items():
        assert len(again[split]) == len(examples)
        for a, b in zip(examples, again[split]):
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{split} {key}")


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_video_frames_move_but_stay_close(video):
    consecutive, across = [], []
    for examples in video.values():
        people = [t for t in tracklets(examples) if int(t[0]["person_id"]) > 0]
        for t in people:
            frames = [e["image"] for e in t]
            steps = [mad(a, b) for a, b in zip(frames, frames[1:])]
            assert max(steps) > 0, t[0]["file_name"]  # gait and drift: frames differ
            consecutive.append(np.mean(steps))
        for i, a in enumerate(people):
            for b in people[i + 1 :]:
                same_cam = int(a[0]["camera_id"]) == int(b[0]["camera_id"])
                if same_cam and int(a[0]["person_id"]) != int(b[0]["person_id"]):
                    across.append(mad(a[0]["image"], b[0]["image"]))
    assert len(across) > 10
    assert np.mean(consecutive) < 0.5 * np.mean(across)


def test_passing_occluder_covers_some_frames_only():
    style = render.domain_style(0, 1)
    for seed in range(50):
        cam = render.sample_camera(np.random.default_rng([1, seed]), style, seed % 6)
        rng = np.random.default_rng(seed)
        num_frames = int(rng.integers(4, 17))
        occluder = tracklet_render._occluder(cam, rng, 64, 32, num_frames)
        covered = []
        for t in range(num_frames):
            img = np.full((64, 32, 3), -1.0, np.float32)
            occluder.draw(img, t)
            covered.append(bool((img >= 0).any()))
        assert 0 < sum(covered) < num_frames, (seed, covered)


def test_render_tracklet_shapes_and_junk():
    style = render.domain_style(0, 1)
    cam = render.sample_camera(np.random.default_rng(0), style, 0)
    person = render.sample_identity(np.random.default_rng(1), style)
    for junk in (False, True):
        for seed in range(4):
            frames = tracklet_render.render_tracklet(
                person, cam, np.random.default_rng(seed), 64, 32, 5, junk=junk
            )
            assert len(frames) == 5
            assert all(f.shape == (64, 32, 3) and f.dtype == np.uint8 for f in frames)
