"""Tests for reid_jax.losses.margin (CosFace, ArcFace) against NumPy loop references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util

from reid_jax.losses import classification, margin


def _cosines(n=6, k=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.95, 0.95, size=(n, k)), rng.integers(0, k, size=n)


def test_cosface_matches_reference():
    cos, labels = _cosines()
    ref = np.empty_like(cos)
    for i in range(cos.shape[0]):
        for c in range(cos.shape[1]):
            ref[i, c] = 30.0 * (cos[i, c] - (0.35 if c == labels[i] else 0.0))
    got = margin.cosface_logits(jnp.asarray(cos), jnp.asarray(labels), 30.0, 0.35)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m", [0.5, 0.3])
def test_arcface_matches_reference(m):
    cos, labels = _cosines(seed=1)
    cos[0, labels[0]] = -0.99  # theta + m > pi: the fallback branch
    ref = np.empty_like(cos)
    for i in range(cos.shape[0]):
        for c in range(cos.shape[1]):
            if c != labels[i]:
                ref[i, c] = 64.0 * cos[i, c]
                continue
            theta = math.acos(cos[i, c])
            if theta + m <= math.pi:
                ref[i, c] = 64.0 * math.cos(theta + m)
            else:
                ref[i, c] = 64.0 * (cos[i, c] - m * math.sin(m))
    got = margin.arcface_logits(jnp.asarray(cos), jnp.asarray(labels), 64.0, m)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_margins_lower_the_target_logit_only():
    cos, labels = _cosines(seed=2)
    for fn in (margin.cosface_logits, margin.arcface_logits):
        logits = np.asarray(fn(jnp.asarray(cos), jnp.asarray(labels)))
        target = np.eye(cos.shape[1], dtype=bool)[labels]
        np.testing.assert_allclose(logits[~target], 64.0 * cos[~target], rtol=1e-5)
        assert np.all(logits[target] < 64.0 * cos[target])


def test_arcface_gradient_finite_at_cos_one():
    cos = jnp.array([[1.0, 0.0], [-1.0, 0.5]])
    labels = jnp.array([0, 0])
    grad = jax.grad(lambda c: jnp.sum(margin.arcface_logits(c, labels)))(cos)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("fn", [margin.cosface_logits, margin.arcface_logits])
def test_gradients_through_cross_entropy(x64, fn):
    cos, labels = _cosines(seed=3)
    labels = jnp.asarray(labels)

    def loss(c):
        return classification.cross_entropy(fn(c, labels, 4.0), labels, 0.1)

    test_util.check_grads(loss, (jnp.asarray(cos),), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)
