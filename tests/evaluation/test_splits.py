"""Tests for reid_jax.evaluation.splits."""

import numpy as np
import pytest

from reid_jax.evaluation import splits


def test_mean_and_std_over_splits():
    results = [
        {'mAP': 0.5, 'rank1': 0.6, 'cmc': np.array([0.6, 0.8])},
        {'mAP': 0.7, 'rank1': 0.8, 'cmc': np.array([0.8, 1.0])},
    ]
    out = splits.aggregate_splits(results)
    assert out['num_splits'] == 2
    assert out['mAP'] == pytest.approx(0.6) and out['mAP_std'] == pytest.approx(0.1)
    np.testing.assert_allclose(out['cmc'], [0.7, 0.9])
    np.testing.assert_allclose(out['cmc_std'], [0.1, 0.1])
    assert 'mINP' not in out


def test_empty_raises():
    with pytest.raises(ValueError):
        splits.aggregate_splits([])


def test_one_per_identity_keeps_one_of_each_and_every_junk_or_distractor():
    pids = np.array([3, 3, 5, -1, 0, 5, 5, 7, 0])
    draws = set()
    for seed in range(20):
        idx = splits.one_per_identity(pids, np.random.default_rng(seed))
        kept = pids[idx]
        assert sorted(kept[kept > 0].tolist()) == [3, 5, 7]
        assert set(np.flatnonzero(pids <= 0)) <= set(idx.tolist())
        assert (np.diff(idx) > 0).all()
        draws.add(tuple(idx))
    assert len(draws) > 1  # the draw changes with the seed
    again = splits.one_per_identity(pids, np.random.default_rng(3))
    np.testing.assert_array_equal(again, splits.one_per_identity(pids, np.random.default_rng(3)))
