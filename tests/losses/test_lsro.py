"""Tests for LSRO (Zheng et al., ICCV 2017): uniform targets for samples labeled -1."""

import jax.numpy as jnp
import numpy as np
from jax import test_util

from reid_jax.losses import classification, lsro


def _reference(logits, labels, eps):
    total = 0.0
    k = logits.shape[1]
    for row, y in zip(logits, labels):
        logp = row - row.max() - np.log(np.exp(row - row.max()).sum())
        if y < 0:
            total += -logp.mean()
        else:
            target = np.full(k, eps / k)
            target[y] += 1 - eps
            total += -(target * logp).sum()
    return total / len(labels)


def test_matches_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)) * 3
    labels = np.array([0, -1, 4, -1, 2, 2])
    for eps in (0.0, 0.1):
        got = lsro.lsro_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), eps)
        np.testing.assert_allclose(got, _reference(logits, labels, eps), rtol=1e-5)


def test_labeled_batch_equals_cross_entropy():
    rng = np.random.default_rng(1)
    logits, labels = jnp.asarray(rng.normal(size=(4, 3))), jnp.array([0, 1, 2, 1])
    np.testing.assert_allclose(
        lsro.identity_cross_entropy(logits, labels, 0.1, lsro=True),
        classification.cross_entropy(logits, labels, 0.1),
        rtol=1e-6,
    )


def test_uniform_logits_minimise_the_generated_term():
    labels = jnp.array([-1])
    flat = lsro.lsro_cross_entropy(jnp.zeros((1, 4)), labels)
    peaked = lsro.lsro_cross_entropy(jnp.array([[3.0, 0.0, 0.0, 0.0]]), labels)
    np.testing.assert_allclose(flat, np.log(4.0), rtol=1e-6)
    assert float(peaked) > float(flat)


def test_gradients(x64):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 4))
    labels = jnp.array([1, -1, 3, -1, 0])
    test_util.check_grads(
        lambda z: lsro.lsro_cross_entropy(z, labels, 0.1), (logits,), order=2, atol=1e-5, rtol=1e-5
    )
