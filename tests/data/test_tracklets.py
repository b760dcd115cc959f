"""Tracklets and clips: grouping by tracklet and frame id, training clip draws (each mode's
rule, determinism, P x K x T layout), test clips covering every frame once."""

import numpy as np
import pytest

from reid_jax import errors
from reid_jax.data import sources, tracklets


def _data(tracklet_ids, frame_ids, pids, cams, labels=None):
    n = len(tracklet_ids)
    labels = np.asarray(pids) - 1 if labels is None else labels
    return sources.ReidData(
        name="fake", parts=[], offsets=np.asarray([0, n]), person_ids=np.asarray(pids, np.int32),
        labels=np.asarray(labels, np.int32), camera_ids=np.asarray(cams, np.int32),
        domains=np.zeros(n, np.int32), file_names=[str(i) for i in range(n)],
        tracklet_ids=np.asarray(tracklet_ids, np.int32), frame_ids=np.asarray(frame_ids, np.int32))


def _synthetic_tracks(num_ids=6, per_id=3, seed=0):
    """Tracklets of 1..20 frames, stored shuffled; identity i has ``per_id`` tracklets in
    alternating cameras."""
    rng = np.random.default_rng(seed)
    trk, frm, pid, cam = [], [], [], []
    t = 0
    for i in range(num_ids):
        for j in range(per_id):
            n = int(rng.integers(1, 21))
            trk += [t] * n
            frm += list(range(n))
            pid += [i + 1] * n
            cam += [j % 2] * n
            t += 1
    order = rng.permutation(len(trk))
    return _data(*(np.asarray(a)[order] for a in (trk, frm, pid, cam)))


def test_tracklets_group_frames_in_frame_order():
    data = _data([1, 0, 1, 0, 1], [2, 1, 0, 0, 1], [5, 7, 5, 7, 5], [0, 1, 0, 1, 0])
    tracks = tracklets.of(data)
    assert [f.tolist() for f in tracks.frames] == [[3, 1], [2, 4, 0]]
    assert tracks.person_ids.tolist() == [7, 5] and tracks.camera_ids.tolist() == [1, 0]
    assert tracks.lengths.tolist() == [2, 3] and tracks.middle_frames().tolist() == [1, 4]


def test_tracklets_refuse_images_and_mixed_identities():
    with pytest.raises(errors.ReidError, match="no tracklet ids"):
        tracklets.of(_data([-1, -1], [-1, -1], [1, 1], [0, 0]))
    with pytest.raises(errors.ReidError, match="mixes identities"):
        tracklets.of(_data([0, 0], [0, 1], [1, 2], [0, 0]))


@pytest.mark.parametrize("length", [1, 3, 4, 7, 9, 33, 40])
def test_each_training_mode_follows_its_rule(length):
    t, stride = 4, 8
    rng = np.random.default_rng(length)
    for _ in range(50):
        rrs = tracklets.sample_clip(rng, length, t, "restricted_random")
        # one frame from each chunk [floor(kL/T), floor((k+1)L/T)) (>= 1 frame each)
        for k, p in enumerate(rrs):
            lo = k * length // t
            hi = max((k + 1) * length // t, lo + 1)
            assert lo <= p < min(hi, length)
        cons = tracklets.sample_clip(rng, length, t, "consecutive")
        if length >= t:
            assert np.all(np.diff(cons) == 1) and cons[-1] < length
        else:
            assert cons.tolist() == [min(i, length - 1) for i in range(t)]
        strided = tracklets.sample_clip(rng, length, t, "stride", stride)
        assert np.all(np.diff(strided) >= 0) and strided.max() < length
        if length >= t * stride:
            assert np.all(np.diff(strided) == stride)
        elif length >= t:
            assert len(set(strided.tolist())) == t
    evenly = tracklets.sample_clip(rng, length, t, "evenly")
    assert evenly[0] == 0 and evenly[-1] == length - 1


def test_clip_batches_are_pk_clips_of_one_tracklet_each_and_deterministic():
    data = _synthetic_tracks()
    tracks = tracklets.of(data)
    p, k, t = 3, 2, 4
    a = tracklets.clip_batches(tracks, p, k, t, seed=1, epoch=2, num_batches=5)
    b = tracklets.clip_batches(tracks, p, k, t, seed=1, epoch=2, num_batches=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, tracklets.clip_batches(tracks, p, k, t, 1, 3, 5))
    assert a.shape == (5, p * k * t)
    owner = np.empty(len(data), np.int64)
    position = np.empty(len(data), np.int64)
    for i, f in enumerate(tracks.frames):
        owner[f] = i
        position[f] = np.arange(len(f))
    for row in a:
        clips = row.reshape(p * k, t)
        for clip in clips:
            assert len(set(owner[clip])) == 1  # one tracklet per clip
            assert np.all(np.diff(position[clip]) >= 0)  # in temporal order
        labels = tracklets.clip_labels(data.labels[row], t)
        assert len(labels) == p * k
        assert all(len(set(labels[i * k:(i + 1) * k])) == 1 for i in range(p))
        assert len(set(labels)) == p


def test_test_clips_cover_every_frame_and_pad_cyclically():
    data = _synthetic_tracks(seed=3)
    tracks = tracklets.of(data)
    clips, owner = tracklets.test_clips(tracks, 4, "dense")
    assert clips.shape[1] == 4 and set(owner.tolist()) == set(range(len(tracks)))
    for i, frames in enumerate(tracks.frames):
        mine = clips[owner == i]
        n = len(frames)
        assert len(mine) == -(-n // 4)
        flat = mine.reshape(-1)
        np.testing.assert_array_equal(flat[:n - n % 4 or n], frames[:n - n % 4 or n])
        last = frames[(len(mine) - 1) * 4:]
        np.testing.assert_array_equal(mine[-1], [last[j % len(last)] for j in range(4)])
        assert set(flat.tolist()) == set(frames.tolist())
    even, owner = tracklets.test_clips(tracks, 4, "evenly")
    assert even.shape == (len(tracks), 4) and owner.tolist() == list(range(len(tracks)))


def test_mean_by_owner_against_numpy():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(7, 3)).astype(np.float32)
    owner = np.asarray([2, 0, 2, 1, 1, 2, 0])
    want = np.stack([feats[owner == i].mean(0) for i in range(3)])
    np.testing.assert_allclose(tracklets.mean_by_owner(feats, owner, 3), want, rtol=1e-6)
