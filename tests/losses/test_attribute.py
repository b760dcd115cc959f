"""Tests for the APR attribute losses (binary cross-entropy with unknown entries)."""

import jax.numpy as jnp
import numpy as np
from jax import test_util

from reid_jax.losses import attribute


def _reference(logits, targets):
    vals = []
    for z, t in zip(logits.ravel(), targets.ravel()):
        if t < 0:
            continue
        p = 1 / (1 + np.exp(-z))
        vals.append(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    return np.mean(vals) if vals else 0.0


def test_matches_reference_with_unknown_entries():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6)) * 2
    targets = rng.integers(-1, 2, size=(4, 6))
    got = attribute.attribute_bce(jnp.asarray(logits), jnp.asarray(targets))
    np.testing.assert_allclose(got, _reference(logits, targets), rtol=1e-5)
    assert float(attribute.attribute_bce(jnp.asarray(logits), -jnp.ones((4, 6)))) == 0.0


def test_large_logits_stay_finite_and_accuracy():
    logits = jnp.array([[80.0, -80.0]])
    targets = jnp.array([[1, 0]])
    assert float(attribute.attribute_bce(logits, targets)) < 1e-12
    assert float(attribute.attribute_bce(logits, 1 - targets)) == 80.0
    assert float(attribute.attribute_accuracy(logits, targets)) == 1.0


def test_gradients(x64):
    rng = np.random.default_rng(1)
    targets = jnp.asarray(rng.integers(-1, 2, size=(3, 4)))
    test_util.check_grads(
        lambda z: attribute.attribute_bce(z, targets), (rng.normal(size=(3, 4)),),
        order=2, atol=1e-5, rtol=1e-5,
    )
