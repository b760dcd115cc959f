"""Tests for reid_jax.losses.classification against a NumPy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util

from reid_jax.losses import classification


def _reference(logits, labels, eps):
    n, k = logits.shape
    total = 0.0
    for i in range(n):
        z = logits[i] - logits[i].max()
        log_p = z - np.log(np.sum(np.exp(z)))
        for c in range(k):
            target = (1 - eps) * (c == labels[i]) + eps / k
            total -= target * log_p[c]
    return total / n


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_matches_reference(eps):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype(np.float32) * 3
    labels = np.array([0, 4, 2, 2, 1, 3])
    got = classification.cross_entropy(jnp.asarray(logits), jnp.asarray(labels), eps)
    np.testing.assert_allclose(got, _reference(logits.astype(np.float64), labels, eps), rtol=1e-5)


def test_hand_built_case():
    # Uniform logits over K classes: loss log K whatever the smoothing.
    logits = jnp.zeros((3, 4))
    labels = jnp.array([0, 1, 3])
    np.testing.assert_allclose(
        classification.cross_entropy(logits, labels, 0.1), np.log(4), rtol=1e-6
    )


def test_bfloat16_logits_are_upcast():
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.bfloat16)
    loss = classification.cross_entropy(logits, jnp.array([0, 1, 2, 0]), 0.1)
    assert loss.dtype == jnp.float32


def test_gradients(x64):
    rng = np.random.default_rng(2)
    logits = jnp.asarray(rng.normal(size=(5, 4)))
    labels = jnp.array([0, 3, 1, 1, 2])
    assert logits.dtype == jnp.float64
    test_util.check_grads(
        lambda z: classification.cross_entropy(z, labels, 0.1),
        (logits,),
        order=1,
        modes=["rev"],
        atol=1e-6,
        rtol=1e-6,
    )
    # d/dz = (softmax - target) / N
    grad = jax.grad(lambda z: classification.cross_entropy(z, labels, 0.1))(logits)
    target = 0.9 * np.eye(4)[np.asarray(labels)] + 0.1 / 4
    np.testing.assert_allclose(grad, (jax.nn.softmax(logits) - target) / 5, atol=1e-12)
