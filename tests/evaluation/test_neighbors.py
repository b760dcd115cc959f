"""Tests for reid_jax.evaluation.neighbors (blocked symmetric k-NN search)."""

import numpy as np
import pytest

from reid_jax.evaluation import neighbors


def _sq_dist(f):
    f = f.astype(np.float64)
    return ((f[:, None] - f[None]) ** 2).sum(-1)


@pytest.mark.parametrize('chunk_size', [2048, 64, 21])
def test_knn_matches_stable_argsort(chunk_size):
    f = np.random.default_rng(0).normal(size=(300, 32)).astype(np.float32)
    d = _sq_dist(f)
    nb = neighbors.knn_search(f, 21, chunk_size=chunk_size)
    np.testing.assert_array_equal(nb.indices, np.argsort(d, axis=1, kind='stable')[:, :21])
    np.testing.assert_allclose(nb.distances, np.sort(d, axis=1)[:, :21], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(nb.row_max, d.max(axis=1), rtol=1e-5)


def test_ties_keep_lower_index_across_blocks():
    # Every point appears three times: exact ties that straddle block boundaries.
    f = np.repeat(np.random.default_rng(1).normal(size=(30, 4)), 3, axis=0).astype(np.float32)
    nb = neighbors.knn_search(f, 7, chunk_size=16)
    assert (nb.distances[:, :3] == nb.distances[:, :1]).all()  # identical vectors tie exactly
    np.testing.assert_array_equal(nb.indices[:, :3], (np.arange(90) // 3 * 3)[:, None] + np.arange(3))


def test_pair_distances():
    f = np.random.default_rng(2).normal(size=(50, 8)).astype(np.float32)
    r, c = np.array([0, 3, 49, 7]), np.array([1, 3, 0, 20])
    np.testing.assert_allclose(
        neighbors.pair_sq_distances(f, r, c, chunk_size=3), _sq_dist(f)[r, c], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize('keep', [1, 37, 64, 100])
def test_head_rows_are_full_distance_rows(keep):
    f = np.random.default_rng(3).normal(size=(100, 8)).astype(np.float32)
    nb = neighbors.knn_search(f, 5, chunk_size=32, keep_rows=keep)
    assert nb.head.shape == (keep, 100)
    np.testing.assert_allclose(nb.head, _sq_dist(f)[:keep], rtol=1e-5, atol=1e-4)


def test_larger_blocks_with_duplicates_match_stable_argsort():
    base = np.random.default_rng(4).normal(size=(1000, 16)).astype(np.float32)
    f = np.concatenate([base, base[:500]])  # exact ties between distant rows
    d = _sq_dist(f)
    nb = neighbors.knn_search(f, 21, chunk_size=512)
    np.testing.assert_array_equal(nb.indices, np.argsort(d, axis=1, kind='stable')[:, :21])
