"""reid_jax.vectors: the one home of norms, L2 normalisation and Euclidean distances."""

import jax
import jax.numpy as jnp
import numpy as np

from reid_jax import vectors


def _dist(a, b):
    return np.sqrt(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum())


def test_euclidean_and_squared_match_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    ref = np.array([[_dist(a, b) for b in y] for a in x])
    got = vectors.euclidean(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    sq = vectors.sq_euclidean(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    np.testing.assert_allclose(sq, ref**2, rtol=1e-5, atol=1e-5)
    assert (np.asarray(vectors.sq_euclidean(jnp.asarray(x), jnp.asarray(x))) >= 0).all()


def test_gradients_are_finite_at_zero():
    x = jnp.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]])  # two identical rows
    assert np.isfinite(jax.grad(lambda x: jnp.sum(vectors.euclidean(x, x)))(x)).all()
    zero = jnp.zeros((2, 3))
    assert np.isfinite(jax.grad(lambda z: jnp.sum(vectors.l2_normalize(z)))(zero)).all()
    assert np.isfinite(jax.grad(lambda z: jnp.sum(vectors.safe_norm(z)))(zero)).all()


def test_l2_normalize_rows_axes_and_host():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    x[2] = 0.0
    ref = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(vectors.l2_normalize(x), ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(vectors.l2_normalize_np(x), ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(vectors.l2_normalize(x))[2], 0.0)
    cols = x / np.maximum(np.linalg.norm(x, axis=0, keepdims=True), 1e-12)
    np.testing.assert_allclose(vectors.l2_normalize(x, axis=0), cols, rtol=1e-6, atol=1e-7)
    assert vectors.l2_normalize_np(x.astype(np.float64)).dtype == np.float64
