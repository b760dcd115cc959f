"""Tests for reid_jax.evaluation.cuhk03 (single-gallery-shot protocol)."""

import numpy as np
import pytest

from reid_jax.evaluation import cuhk03, protocols


def test_hand_built_single_shot_expectation():
    # Query pid 1, cam 0. Gallery: g0 pid 1 (d 0.1), g1 pid 2 (d 0.3), g2 pid 1 (d 0.5),
    # all cam 1. A draw keeps one pid-1 image: g0 -> first match at rank 1, g2 -> rank 2
    # (behind g1). Expected rank-1 = 0.5, rank-2 = 1.
    # AP on the full gallery: matches at ranks 1 and 3 -> (1 + 2/3) / 2 = 5/6.
    d = np.array([[0.1, 0.3, 0.5]])
    res = cuhk03.evaluate_cuhk03_classic(d, [1], [1, 2, 1], [0], [1, 1, 1], max_rank=2,
                                         num_repeats=4000, seed=0)
    assert res['rank1'] == pytest.approx(0.5, abs=0.03)
    assert res['cmc'][1] == 1.0
    assert res['mAP'] == pytest.approx(5 / 6)


def test_one_image_per_identity_equals_market_cmc():
    rng = np.random.default_rng(0)
    g_pids = np.arange(1, 31)
    q_pids = rng.integers(1, 31, 12)
    d = rng.random((12, 30))
    args = (d, q_pids, g_pids, np.zeros(12, int), np.ones(30, int))
    a = cuhk03.evaluate_cuhk03_classic(*args, max_rank=10, num_repeats=3)
    b = protocols.evaluate_market(*args, max_rank=10)
    np.testing.assert_allclose(a['cmc'], b['cmc'])
    assert a['mAP'] == b['mAP'] and a['rank5'] == b['rank5']


def test_seed_makes_it_reproducible():
    rng = np.random.default_rng(1)
    d = rng.random((10, 40))
    args = (d, rng.integers(0, 8, 10), rng.integers(0, 8, 40), rng.integers(0, 2, 10), rng.integers(0, 2, 40))
    a = cuhk03.evaluate_cuhk03_classic(*args, max_rank=5, seed=3)
    b = cuhk03.evaluate_cuhk03_classic(*args, max_rank=5, seed=3)
    np.testing.assert_array_equal(a['cmc'], b['cmc'])
