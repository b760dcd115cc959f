"""Tests for reid_jax.losses.metric against NumPy loop references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util

from reid_jax.losses import metric


def _dist(a, b):
    return np.sqrt(np.sum((a - b) ** 2))


def _triplet_reference(feats, labels, margin, soft):
    n = len(labels)
    losses = []
    for i in range(n):
        pos = [_dist(feats[i], feats[j]) for j in range(n) if j != i and labels[j] == labels[i]]
        neg = [_dist(feats[i], feats[j]) for j in range(n) if labels[j] != labels[i]]
        if not pos or not neg:
            continue
        gap = max(pos) - min(neg)
        losses.append(np.log1p(np.exp(gap)) if soft else max(0.0, gap + margin))
    return np.mean(losses) if losses else 0.0


@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_matches_reference(soft):
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(9, 4)).astype(np.float32)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3])  # anchor 8 has no positive
    got = metric.batch_hard_triplet(jnp.asarray(feats), jnp.asarray(labels), 0.3, soft)
    ref = _triplet_reference(feats.astype(np.float64), labels, 0.3, soft)
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_batch_hard_hand_built():
    # 1-D points: ids 0 at {0, 1}, id 1 at {3, 5}, id 2 alone at {10} (no positive).
    feats = jnp.array([[0.0], [1.0], [3.0], [5.0], [10.0]])
    labels = jnp.array([0, 0, 1, 1, 2])
    # per anchor (dp, dn): (1, 3), (1, 2), (2, 2), (2, 4); anchor 4 excluded.
    expected = np.mean([max(0, 1 - 3 + 1.5), max(0, 1 - 2 + 1.5), 1.5, max(0, 2 - 4 + 1.5)])
    np.testing.assert_allclose(metric.batch_hard_triplet(feats, labels, 1.5), expected, rtol=1e-6)
    # Without any valid anchor the loss is 0, not NaN.
    same = metric.batch_hard_triplet(feats, jnp.zeros(5, jnp.int32))
    assert same == 0.0
    alone = metric.batch_hard_triplet(feats, jnp.arange(5))
    assert alone == 0.0
    grad = jax.grad(metric.batch_hard_triplet)(feats, jnp.arange(5))
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_gradients(x64, soft):
    rng = np.random.default_rng(2)
    feats = jnp.asarray(rng.normal(size=(7, 3)))
    labels = jnp.array([0, 0, 1, 1, 1, 2, 3])
    assert feats.dtype == jnp.float64
    test_util.check_grads(
        lambda f: metric.batch_hard_triplet(f, labels, 0.3, soft),
        (feats,),
        order=1,
        modes=["rev"],
        atol=1e-5,
        rtol=1e-5,
    )


def test_center_loss_matches_reference():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(6, 4)).astype(np.float32)
    centers = rng.normal(size=(3, 4)).astype(np.float32)
    labels = np.array([0, 2, 2, 1, 0, 1])
    ref = np.mean([np.sum((feats[i] - centers[labels[i]]) ** 2) for i in range(6)])
    got = metric.center_loss(jnp.asarray(feats), jnp.asarray(labels), jnp.asarray(centers))
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_center_loss_gradients(x64):
    rng = np.random.default_rng(4)
    feats = jnp.asarray(rng.normal(size=(5, 3)))
    centers = jnp.asarray(rng.normal(size=(4, 3)))
    labels = jnp.array([0, 3, 3, 1, 0])
    test_util.check_grads(
        lambda f, c: metric.center_loss(f, labels, c),
        (feats, centers),
        order=1,
        modes=["rev"],
        atol=1e-6,
        rtol=1e-6,
    )


# ------------------------------------------------------- AGW weighted regularization triplet


def _weighted_triplet_reference(feats, labels):
    n = len(labels)
    losses = []
    for i in range(n):
        pos = np.array([_dist(feats[i], feats[j]) for j in range(n) if labels[j] == labels[i]])
        neg = np.array([_dist(feats[i], feats[j]) for j in range(n) if labels[j] != labels[i]])
        if len(neg) == 0:
            continue
        w_pos = np.exp(pos - pos.max()) / np.sum(np.exp(pos - pos.max()))
        w_neg = np.exp(-neg + neg.min()) / np.sum(np.exp(-neg + neg.min()))
        gap = np.sum(w_pos * pos) - np.sum(w_neg * neg)
        losses.append(np.log1p(np.exp(gap)))
    return np.mean(losses) if losses else 0.0


def test_weighted_triplet_matches_reference():
    rng = np.random.default_rng(5)
    feats = rng.normal(size=(9, 4)).astype(np.float32)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3])  # 3: alone, still has negatives
    got = metric.weighted_regularized_triplet(jnp.asarray(feats), jnp.asarray(labels))
    ref = _weighted_triplet_reference(feats.astype(np.float64), labels)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert metric.weighted_regularized_triplet(jnp.asarray(feats), jnp.zeros(9, int)) == 0.0


def test_weighted_triplet_gradients(x64):
    rng = np.random.default_rng(6)
    feats = jnp.asarray(rng.normal(size=(7, 3)))
    labels = jnp.array([0, 0, 1, 1, 1, 2, 3])
    test_util.check_grads(
        lambda f: metric.weighted_regularized_triplet(f, labels),
        (feats,),
        order=1,
        modes=["rev"],
        atol=1e-5,
        rtol=1e-5,
    )


# ------------------------------------------------------------------ pairwise circle loss


def _circle_reference(feats, labels, m, gamma):
    emb = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    n = len(labels)
    losses = []
    for i in range(n):
        pos = [emb[i] @ emb[j] for j in range(n) if j != i and labels[j] == labels[i]]
        neg = [emb[i] @ emb[j] for j in range(n) if labels[j] != labels[i]]
        if not pos or not neg:
            continue
        lp = [-gamma * max(0.0, 1 + m - s) * (s - (1 - m)) for s in pos]
        ln = [gamma * max(0.0, s + m) * (s - m) for s in neg]
        lse_p = max(lp) + np.log(np.sum(np.exp(np.array(lp) - max(lp))))
        lse_n = max(ln) + np.log(np.sum(np.exp(np.array(ln) - max(ln))))
        z = lse_p + lse_n
        losses.append(max(z, 0.0) + np.log1p(np.exp(-abs(z))))  # stable softplus
    return np.mean(losses) if losses else 0.0


@pytest.mark.parametrize(("m", "gamma"), [(0.25, 128.0), (0.4, 16.0)])
def test_circle_matches_reference(m, gamma):
    rng = np.random.default_rng(7)
    feats = rng.normal(size=(9, 5)).astype(np.float32)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3])  # anchor 8 has no positive
    got = metric.pairwise_circle_loss(jnp.asarray(feats), jnp.asarray(labels), m, gamma)
    ref = _circle_reference(feats.astype(np.float64), labels, m, gamma)
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert metric.pairwise_circle_loss(jnp.asarray(feats), jnp.arange(9)) == 0.0


def test_circle_gradients_treat_alpha_as_constant(x64):
    rng = np.random.default_rng(8)
    feats = jnp.asarray(rng.normal(size=(6, 3)))
    labels = jnp.array([0, 0, 1, 1, 2, 2])
    m, gamma = 0.25, 4.0

    def reference_with_constant_alpha(f, alpha_p, alpha_n):
        emb = f / jnp.linalg.norm(f, axis=1, keepdims=True)
        sim = emb @ emb.T
        same = labels[:, None] == labels[None, :]
        pos = same & ~jnp.eye(6, dtype=bool)
        lp = jnp.where(pos, -gamma * alpha_p * (sim - 1 + m), -jnp.inf)
        ln = jnp.where(~same, gamma * alpha_n * (sim - m), -jnp.inf)
        z = jax.nn.logsumexp(lp, axis=1) + jax.nn.logsumexp(ln, axis=1)
        return jnp.mean(jax.nn.softplus(z))

    emb = feats / jnp.linalg.norm(feats, axis=1, keepdims=True)
    sim = emb @ emb.T
    alpha_p, alpha_n = jax.nn.relu(1 + m - sim), jax.nn.relu(sim + m)
    np.testing.assert_allclose(
        jax.grad(metric.pairwise_circle_loss)(feats, labels, m, gamma),
        jax.grad(reference_with_constant_alpha)(feats, alpha_p, alpha_n),
        rtol=1e-10,
        atol=1e-12,
    )
    # The stop-gradient on alpha makes the loss's gradient differ from its numerical
    # derivative; check_grads applies to the constant-alpha function.
    test_util.check_grads(
        lambda f: reference_with_constant_alpha(f, alpha_p, alpha_n),
        (feats,),
        order=1,
        modes=["rev"],
        atol=1e-6,
        rtol=1e-6,
    )
