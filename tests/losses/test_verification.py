"""Tests for the identification + verification pair loss and head (Zheng et al. 2016)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import test_util

from reid_jax.losses import verification
from reid_jax.models import verification as verif_head


def _reference_logits(f, w, b):
    n = f.shape[0]
    out = np.zeros((n, n, 2))
    for i in range(n):
        for j in range(n):
            out[i, j] = ((f[i] - f[j]) ** 2) @ w + b
    return out


def _reference_loss(logits, labels):
    pos, neg = [], []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j or labels[i] < 0 or labels[j] < 0:
                continue
            z = logits[i, j] - logits[i, j].max()
            logp = z - np.log(np.exp(z).sum())
            same = labels[i] == labels[j]
            (pos if same else neg).append(-logp[1 if same else 0])
    means = [np.mean(v) for v in (pos, neg) if v]
    return np.mean(means) if means else 0.0


def test_head_matches_square_layer_reference():
    rng = np.random.default_rng(0)
    f, w, b = rng.normal(size=(5, 7)), rng.normal(size=(7, 2)), rng.normal(size=2)
    got = verif_head.pair_logits(jnp.asarray(f), jnp.asarray(w), jnp.asarray(b))
    np.testing.assert_allclose(got, _reference_logits(f, w, b), rtol=1e-4, atol=1e-4)
    head = verif_head.VerificationHead()
    variables = head.init(jax.random.key(0), jnp.asarray(f, jnp.float32))
    assert variables["params"]["kernel"].shape == (7, 2)
    assert head.apply(variables, jnp.asarray(f, jnp.float32)).shape == (5, 5, 2)


def test_loss_matches_reference_with_unlabeled_samples():
    rng = np.random.default_rng(1)
    labels = np.array([0, 0, 1, 1, 2, -1, 2])
    logits = rng.normal(size=(7, 7, 2))
    got = verification.verification_loss(jnp.asarray(logits), jnp.asarray(labels))
    np.testing.assert_allclose(got, _reference_loss(logits, labels), rtol=1e-5)
    # One kind of pair only: the mean of that kind.
    only_neg = np.array([0, 1, 2])
    got = verification.verification_loss(jnp.asarray(logits[:3, :3]), jnp.asarray(only_neg))
    np.testing.assert_allclose(got, _reference_loss(logits[:3, :3], only_neg), rtol=1e-5)


def test_perfect_logits_give_full_accuracy_and_small_loss():
    labels = jnp.array([0, 0, 1, 1])
    same = np.asarray(labels[:, None] == labels[None, :])
    logits = jnp.asarray(np.stack([np.where(same, -10.0, 10.0), np.where(same, 10.0, -10.0)], -1))
    assert float(verification.verification_accuracy(logits, labels)) == 1.0
    assert float(verification.verification_loss(logits, labels)) < 1e-6


def test_gradients_through_head_and_loss(x64):
    rng = np.random.default_rng(2)
    f, w, b = rng.normal(size=(6, 4)), 0.3 * rng.normal(size=(4, 2)), rng.normal(size=2)
    labels = jnp.array([0, 0, 1, 1, 2, 2])

    def loss(f, w, b):
        return verification.verification_loss(verif_head.pair_logits(f, w, b), labels)

    # pair_logits computes in float32; promote explicitly for the float64 check.
    def loss64(f, w, b):
        square = (f[:, None] - f[None]) ** 2
        return verification.verification_loss(jnp.einsum("ijd,dk->ijk", square, w) + b, labels)

    np.testing.assert_allclose(loss(f, w, b), loss64(f, w, b), rtol=1e-5)
    test_util.check_grads(loss64, (f, w, b), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
