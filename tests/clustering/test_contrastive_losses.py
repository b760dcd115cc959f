"""ClusterNCE, masked (smoothed) cross-entropy and soft triplet vs NumPy; gradients."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from reid_jax.losses import contrastive


def _normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_cluster_nce_matches_numpy_and_ignores_padding_rows():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(6, 5)).astype(np.float32)
    mem = np.zeros((8, 5), np.float32)
    mem[:4] = _normalize(rng.normal(size=(4, 5)))
    labels = np.array([0, 1, 2, 3, 0, 2])
    got = contrastive.cluster_nce(jnp.asarray(f), jnp.asarray(mem), jnp.asarray(labels), 4, 0.05)
    logits = _normalize(f.astype(np.float64)) @ mem[:4].T / 0.05
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
    np.testing.assert_allclose(got, -logp[np.arange(6), labels].mean(), rtol=1e-5)


def test_cluster_nce_gradients_flow_to_features_only():
    rng = np.random.default_rng(1)
    f = jnp.asarray(rng.normal(size=(4, 3)))
    mem = jnp.asarray(_normalize(rng.normal(size=(3, 3))))
    labels = jnp.array([0, 1, 2, 1])
    check_grads(lambda x: contrastive.cluster_nce(x, mem, labels, 3, 0.5), (f,), order=1,
                modes=["rev"], atol=1e-2, rtol=1e-2)
    g_mem = jax.grad(lambda m: contrastive.cluster_nce(f, m, labels, 3, 0.5))(mem)
    np.testing.assert_array_equal(g_mem, 0.0)


def test_masked_cross_entropy_with_smoothing():
    logits = jnp.array([[1.0, 2.0, 0.5, 100.0], [0.0, 0.0, 3.0, -5.0]])
    labels = jnp.array([1, 2])
    got = contrastive.masked_cross_entropy(logits, labels, 3, label_smoothing=0.1)
    x = np.asarray(logits)[:, :3]
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    target = 0.9 * np.eye(3)[[1, 2]] + 0.1 / 3
    np.testing.assert_allclose(got, -(target * logp).sum(1).mean(), rtol=1e-6)


def test_soft_triplet_matches_numpy():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(8, 4)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    d = np.sqrt(np.maximum(((f[:, None] - f[None]) ** 2).sum(-1), 1e-12))
    same = labels[:, None] == labels[None]
    d_ap = np.where(same, d, -np.inf).max(1)
    d_an = np.where(~same, d, np.inf).min(1)
    want = np.mean(np.log1p(np.exp(d_ap - d_an)))
    got = contrastive.soft_triplet(jnp.asarray(f), jnp.asarray(labels))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_soft_entropy_matches_numpy():
    s = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]])
    t = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 0.0]])
    pt = np.exp(t) / np.exp(t).sum(1, keepdims=True)
    logps = s - np.log(np.exp(s).sum(1, keepdims=True))
    got = contrastive.soft_entropy(jnp.asarray(s), jnp.asarray(t))
    np.testing.assert_allclose(got, -(pt * logps).sum(1).mean(), rtol=1e-6)


def test_soft_triplet_distill_matches_numpy():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(6, 4)).astype(np.float32)
    t = rng.normal(size=(6, 4)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2])

    def dist(x):
        return np.sqrt(np.maximum(((x[:, None] - x[None]) ** 2).sum(-1), 1e-12))

    d, dt = dist(f), dist(t)
    same = labels[:, None] == labels[None]
    ap = np.where(same & ~np.eye(6, dtype=bool), d, -np.inf).argmax(1)
    an = np.where(~same, d, np.inf).argmin(1)
    r = np.arange(6)
    student = np.stack([d[r, ap], d[r, an]], 1)
    teacher = np.stack([dt[r, ap], dt[r, an]], 1)
    target = np.exp(teacher) / np.exp(teacher).sum(1, keepdims=True)
    logp = student - np.log(np.exp(student).sum(1, keepdims=True))
    got = contrastive.soft_triplet_distill(jnp.asarray(f), jnp.asarray(t), jnp.asarray(labels))
    np.testing.assert_allclose(got, (-(target * logp).sum(1)).mean(), rtol=1e-5)
    # Gradients reach the student only.
    g = jax.grad(lambda x: contrastive.soft_triplet_distill(jnp.asarray(f), x, jnp.asarray(labels)))(
        jnp.asarray(t)
    )
    np.testing.assert_array_equal(g, 0.0)
