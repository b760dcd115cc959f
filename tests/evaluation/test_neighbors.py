"""Tests for reid_jax.evaluation.neighbors (blocked symmetric k-NN search)."""

import numpy as np
import pytest

from reid_jax.evaluation import neighbors


def _sq_dist(f):
    f = f.astype(np.float64)
    return ((f[:, None] - f[None]) ** 2).sum(-1)


def _assert_nearest(indices, f, k, rtol=1e-5):
    """The promise for distinct rows: the k nearest up to float32 rounding (which BLAS
    kernel and thread count decide, so no exact order is asserted among near-ties)."""
    d = _sq_dist(f)
    assert indices.shape == (len(f), k)
    assert all(len(set(row)) == k for row in indices.tolist())
    got = np.take_along_axis(d, indices, axis=1)
    np.testing.assert_allclose(got, np.sort(d, axis=1)[:, :k], rtol=rtol, atol=rtol * d.max())


BACKENDS = ['device', 'host']


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('chunk_size', [2048, 64, 21, 16])
def test_knn_matches_stable_argsort(chunk_size, backend):
    f = np.random.default_rng(0).normal(size=(300, 32)).astype(np.float32)
    d = _sq_dist(f)
    nb = neighbors.knn_search(f, 21, chunk_size=chunk_size, backend=backend)
    _assert_nearest(nb.indices, f, 21)
    np.testing.assert_allclose(nb.distances, np.sort(d, axis=1)[:, :21], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(nb.row_max, d.max(axis=1), rtol=1e-5)


@pytest.mark.parametrize('backend', BACKENDS)
def test_ties_keep_lower_index_across_blocks(backend):
    # Every point appears three times: exact ties that straddle block boundaries.
    f = np.repeat(np.random.default_rng(1).normal(size=(30, 4)), 3, axis=0).astype(np.float32)
    nb = neighbors.knn_search(f, 7, chunk_size=16, backend=backend)
    assert (nb.distances[:, :3] == nb.distances[:, :1]).all()  # identical vectors tie exactly
    np.testing.assert_array_equal(nb.indices[:, :3], (np.arange(90) // 3 * 3)[:, None] + np.arange(3))


def test_pair_distances():
    f = np.random.default_rng(2).normal(size=(50, 8)).astype(np.float32)
    r, c = np.array([0, 3, 49, 7]), np.array([1, 3, 0, 20])
    np.testing.assert_allclose(
        neighbors.pair_sq_distances(f, r, c, chunk_size=3), _sq_dist(f)[r, c], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('keep', [1, 37, 64, 100])
def test_head_rows_are_full_distance_rows(keep, backend):
    f = np.random.default_rng(3).normal(size=(100, 8)).astype(np.float32)
    nb = neighbors.knn_search(f, 5, chunk_size=32, keep_rows=keep, backend=backend)
    assert nb.head.shape == (keep, 100)
    np.testing.assert_allclose(nb.head, _sq_dist(f)[:keep], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('backend', BACKENDS)
def test_larger_blocks_with_duplicates_tie_exactly_in_index_order(backend):
    # Copies far apart land in different blocks and at different positions in them,
    # where a blocked BLAS matmul rounds a.x and a.x' differently (the order of the
    # copies then depended on the machine's BLAS kernel). The search promises that
    # copies share one distance and come in index order, whatever the kernel.
    base = np.random.default_rng(4).normal(size=(1000, 16)).astype(np.float32)
    f = np.concatenate([base, base[:500]])
    nb = neighbors.knn_search(f, 21, chunk_size=512, backend=backend)
    _assert_nearest(nb.indices, f, 21)
    copy = {i: i + 1000 for i in range(500)} | {i + 1000: i for i in range(500)}
    for r in range(len(f)):
        row, dist = nb.indices[r].tolist(), nb.distances[r]
        for j, c in enumerate(row):
            if c in copy and copy[c] in row:
                j2 = row.index(copy[c])
                assert dist[j] == dist[j2]
                assert abs(j2 - j) == 1 and (j < j2) == (c < copy[c])
        if r in copy:  # every copy of a row gets the same list
            np.testing.assert_array_equal(nb.indices[r], nb.indices[copy[r]])
            assert sorted(row[:2]) == sorted([r, copy[r]])


def _unit_rows(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize('chunk_size', [2048, 97, 16])
def test_host_dot_product_filter_is_exact(chunk_size):
    # Unit rows (the clustering case): without row_max the host search compares dot
    # products with one bound per row; it must give the same lists, bit for bit, as
    # the filter on full distances, and the stable-argsort order.
    base = np.random.default_rng(5).normal(size=(400, 24))
    f = _unit_rows(np.concatenate([base, base[:100], base[50:60]]))  # exact ties
    full = neighbors.knn_search_host(f, 31, chunk_size=chunk_size, row_max=True)
    fast = neighbors.knn_search_host(f, 31, chunk_size=chunk_size, row_max=False)
    assert fast.row_max is None
    np.testing.assert_array_equal(fast.indices, full.indices)
    np.testing.assert_array_equal(fast.distances, full.distances)
    d = np.maximum(2.0 - 2.0 * f.astype(np.float64) @ f.T.astype(np.float64), 0.0)
    want = np.argsort(d, axis=1, kind='stable')[:, :31]
    # Float32 distances may order near-ties (within ~1e-6) differently from float64.
    got_d = np.take_along_axis(d, fast.indices, axis=1)
    want_d = np.take_along_axis(d, want, axis=1)
    np.testing.assert_allclose(got_d, want_d, atol=2e-6)
    dup = np.arange(400, 510)
    np.testing.assert_array_equal(fast.indices[dup, :2].min(axis=1), np.r_[np.arange(100), np.arange(50, 60)])


def test_host_search_with_fewer_rows_than_k_per_block():
    f = _unit_rows(np.random.default_rng(6).normal(size=(50, 8)))
    d = _sq_dist(f)
    for row_max in (True, False):
        nb = neighbors.knn_search_host(f, 40, chunk_size=7, row_max=row_max)
        _assert_nearest(nb.indices, f, 40)
        np.testing.assert_allclose(nb.distances, np.sort(d, axis=1)[:, :40], atol=1e-5)


def test_unknown_backend():
    with pytest.raises(ValueError, match='backend'):
        neighbors.knn_search(np.zeros((4, 2), np.float32), 2, backend='gpu')
