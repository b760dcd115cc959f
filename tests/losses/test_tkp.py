"""TKP's losses against NumPy references, their gradients (finite differences) and the
detached video side."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from reid_jax.losses import tkp


def _np_dist(a, b):
    return np.sqrt(np.maximum(((a[:, None] - b[None]) ** 2).sum(-1), 1e-12))


def _np_cross_triplet(a, la, b, lb, margin):
    d = _np_dist(a, b)
    out = []
    for i in range(len(a)):
        pos = la[i] == lb
        if pos.any() and (~pos).any():
            out.append(max(0.0, d[i][pos].max() - d[i][~pos].min() + margin))
    return np.mean(out) if out else 0.0


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    n, t, c = 4, 3, 5
    img = rng.normal(size=(n * t, c)).astype(np.float32)
    vid_frames = rng.normal(size=(n * t, c)).astype(np.float32)
    vid = rng.normal(size=(n, c)).astype(np.float32)
    clip_labels = np.asarray([0, 0, 1, 1])
    return img, vid_frames, vid, clip_labels, np.repeat(clip_labels, t)


def test_propagation_losses_against_numpy(batch):
    img, vid_frames, *_ = batch
    want_f = np.mean(((img - vid_frames) ** 2).sum(-1))
    np.testing.assert_allclose(tkp.feature_propagation(img, vid_frames), want_f, rtol=1e-5)
    want_d = np.mean((_np_dist(img, img) - _np_dist(vid_frames, vid_frames)) ** 2)
    np.testing.assert_allclose(tkp.distance_propagation(img, vid_frames), want_d, rtol=1e-4)


def test_integrated_triplet_against_numpy(batch):
    img, _, vid, clip_labels, frame_labels = batch
    got = tkp.integrated_triplet(img, frame_labels, vid, clip_labels, 0.3)
    sets = {"i": (img, frame_labels), "v": (vid, clip_labels)}
    for name in ("i2v", "v2i", "i2i", "v2v"):
        a, b = sets[name[0]], sets[name[2]]
        np.testing.assert_allclose(got[name], _np_cross_triplet(*a, *b, 0.3), rtol=1e-5,
                                   atol=1e-6)


def test_gradients_by_finite_differences_and_detached_teacher(batch):
    img, vid_frames, vid, clip_labels, frame_labels = batch
    img64 = jnp.asarray(img, jnp.float32)
    check_grads(lambda x: tkp.feature_propagation(x, vid_frames), (img64,), order=1,
                modes=["rev"], atol=1e-2, rtol=1e-2)
    check_grads(lambda x: tkp.distance_propagation(x, vid_frames), (img64,), order=1,
                modes=["rev"], atol=1e-2, rtol=1e-2)
    check_grads(lambda x: tkp.cross_batch_hard_triplet(x, frame_labels, vid, clip_labels),
                (img64,), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    for fn in (tkp.feature_propagation, tkp.distance_propagation):
        g = jax.grad(lambda v, fn=fn: fn(img, v))(vid_frames)
        assert not np.any(np.asarray(g))  # the video side is the teacher, detached
        g = jax.grad(lambda v, fn=fn: fn(img, v, teacher_gradient=True))(vid_frames)
        assert np.any(np.asarray(g))
