"""PPLR cross agreement, AALS and PGLR against hand-computed cases."""

import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax.clustering import cross_agreement


def test_set_overlap_by_hand():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    b = np.array([[4, 3, 9, 10], [5, 6, 7, 8]])
    np.testing.assert_allclose(cross_agreement.set_overlap(a, b), [2 / 6, 1.0])


def test_ranked_lists_exclude_the_image_itself():
    x = np.array([[0.0, 1], [0.1, 1], [1, 0], [1, 0.2], [1, 1]], np.float32)
    got = cross_agreement.ranked_lists(x, k=2)
    assert got.shape == (5, 2)
    assert not (got == np.arange(5)[:, None]).any()
    np.testing.assert_array_equal(got[0], [1, 4])
    np.testing.assert_array_equal(got[2], [3, 4])


def test_cross_agreement_of_identical_and_shuffled_spaces():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(40, 6)).astype(np.float32)
    parts = np.stack([g, rng.normal(size=(40, 6)).astype(np.float32)], axis=1)
    score = cross_agreement.cross_agreement(g, parts, k=5)
    assert score.shape == (40, 2)
    np.testing.assert_allclose(score[:, 0], 1.0)
    assert score[:, 1].mean() < 0.5


def test_aals_by_hand():
    logits = jnp.array([[2.0, 0.0, 1.0, 50.0]])  # the last class is not in this round
    labels = jnp.array([0])
    c = 0.25
    got = cross_agreement.aals(logits, labels, jnp.array([c]), num_classes=3)
    p = np.exp([2.0, 0.0, 1.0]) / np.exp([2.0, 0.0, 1.0]).sum()
    ce = -np.log(p[0])
    kl = np.sum(1 / 3 * (np.log(1 / 3) - np.log(p)))
    np.testing.assert_allclose(got, c * ce + (1 - c) * kl, rtol=1e-6)


def test_pglr_targets_and_loss_by_hand():
    part_logits = jnp.array([[[0.0, 0.0, 9.0], [np.log(3.0), 0.0, 9.0]]])  # [B=1, P=2, C=3]
    ca = jnp.array([[0.0, np.log(3.0)]])  # softmax over parts -> w = [1/4, 3/4]
    t = cross_agreement.pglr_targets(part_logits, jnp.array([1]), ca, num_classes=2, beta=0.5)
    ensemble = 0.25 * np.array([0.5, 0.5, 0]) + 0.75 * np.array([0.75, 0.25, 0])
    want = 0.5 * np.array([0, 1, 0]) + 0.5 * ensemble
    np.testing.assert_allclose(t[0], want, atol=1e-6)
    g = jnp.array([[1.0, 2.0, 7.0]])
    loss = cross_agreement.pglr(g, part_logits, jnp.array([1]), ca, 2, 0.5)
    logp = np.log(np.exp([1.0, 2.0]) / np.exp([1.0, 2.0]).sum())
    np.testing.assert_allclose(loss, -(want[:2] * logp).sum(), rtol=1e-6)


@pytest.mark.parametrize("c", [0.0, 1.0])
def test_aals_extremes(c):
    logits = jnp.array([[1.0, 3.0]])
    got = float(cross_agreement.aals(logits, jnp.array([1]), jnp.array([c]), 2))
    p = np.exp([1.0, 3.0]) / np.exp([1.0, 3.0]).sum()
    want = -np.log(p[1]) if c == 1.0 else np.sum(0.5 * (np.log(0.5) - np.log(p)))
    assert got == pytest.approx(want, rel=1e-6)
