"""Tests for reid_jax.evaluation.kreciprocal building blocks (hand-computed)."""

import numpy as np
import scipy.sparse

from reid_jax.evaluation import kreciprocal


def test_reciprocal_mask():
    # Lists of length 2: 0 -> [0, 1], 1 -> [1, 2], 2 -> [2, 1].
    ranking = np.array([[0, 1, 2], [1, 2, 0], [2, 1, 0]])
    # 0 in list of 1? [1, 2] no. 1 in list of 2? [2, 1] yes. Self always yes.
    np.testing.assert_array_equal(
        kreciprocal.reciprocal_mask(ranking, 2), [[True, False], [True, True], [True, True]]
    )


def test_encode_weights_sum_to_one():
    n = 3
    members = np.array([[0, 1, n], [1, n, n], [0, 1, 2]])
    counts = np.array([2, 1, 3])
    dist = np.array([[0.0, 1.0, 9.0], [0.5, 9.0, 9.0], [0.0, 0.0, 0.0]], np.float32)
    v = kreciprocal.encode(members, counts, dist, n).toarray()
    e = np.exp(-1.0)
    np.testing.assert_allclose(v[0], [1 / (1 + e), e / (1 + e), 0], rtol=1e-6)
    np.testing.assert_allclose(v[1], [0, 1, 0])
    np.testing.assert_allclose(v[2], [1 / 3] * 3, rtol=1e-6)


def test_query_expansion_averages_rows():
    v = scipy.sparse.csr_matrix(np.array([[1.0, 0, 0], [0, 0.5, 0.5], [0, 0, 1.0]], np.float32))
    ranking = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    out = kreciprocal.query_expansion(v, ranking, 2).toarray()
    np.testing.assert_allclose(out, [[0.5, 0.25, 0.25], [0, 0.25, 0.75], [0.5, 0, 0.5]])
    assert kreciprocal.query_expansion(v, ranking, 1) is v


def test_min_sums_and_jaccard():
    a = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.8]], np.float32)
    b = np.array([[0.25, 0.25, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]], np.float32)
    # m[0] = [0.25 + 0.25, 0, 0.5], m[1] = [0.2, 0.8, 0]
    m = kreciprocal.min_sums(scipy.sparse.csr_matrix(a), scipy.sparse.csr_matrix(b.T))
    np.testing.assert_allclose(m, [[0.5, 0.0, 0.5], [0.2, 0.8, 0.0]], rtol=1e-6)
    # Jaccard = 1 - m / (2 - m) = 1 - sum min / sum max.
    np.testing.assert_allclose(kreciprocal.jaccard_from_min_sums(m)[0, 0], 1 - 0.5 / 1.5, rtol=1e-6)
    maxs = np.maximum(a[:, None], b[None]).sum(-1)
    np.testing.assert_allclose(kreciprocal.jaccard_from_min_sums(m), 1 - m / maxs, rtol=1e-6)


def _random_encoding(n, nnz_per_row, seed):
    rng = np.random.default_rng(seed)
    v = np.zeros((n, n), np.float32)
    for i in range(n):
        cols = rng.choice(n, nnz_per_row, replace=False)
        v[i, cols] = rng.random(nnz_per_row) + 0.01
    v /= v.sum(axis=1, keepdims=True)
    return scipy.sparse.csr_matrix(v)


def test_upper_min_sums_equals_min_sums_bit_for_bit():
    v = _random_encoding(120, 15, seed=0)
    full = kreciprocal.min_sums(v, v.T.tocsr())
    rows, cols, m = kreciprocal.upper_min_sums(v)
    want_r, want_c = np.nonzero(np.triu(full) > 0)
    np.testing.assert_array_equal(rows, want_r)
    np.testing.assert_array_equal(cols, want_c)
    np.testing.assert_array_equal(m, full[rows, cols])  # same bits, either triangle
    np.testing.assert_array_equal(m, full[cols, rows])
    dense = np.minimum(v.toarray()[:, None], v.toarray()[None]).sum(-1)
    np.testing.assert_allclose(m, dense[rows, cols], rtol=1e-6)


def test_upper_min_sums_threshold_and_unsorted_rows():
    v = _random_encoding(80, 30, seed=1)
    full = kreciprocal.min_sums(v, v.T.tocsr())
    shuffled = v.copy()
    order = np.random.default_rng(2).permutation(shuffled.nnz)
    for i in range(80):  # scramble the column order inside each row
        lo, hi = shuffled.indptr[i], shuffled.indptr[i + 1]
        sub = lo + np.argsort(order[lo:hi])
        shuffled.indices[lo:hi], shuffled.data[lo:hi] = v.indices[sub], v.data[sub]
    shuffled.has_sorted_indices = False
    rows, cols, m = kreciprocal.upper_min_sums(shuffled, min_value=0.3)
    want_r, want_c = np.nonzero(np.triu(full) >= 0.3)
    assert 80 < rows.size < 80 * 81 // 2  # the diagonal and some pairs, not all
    np.testing.assert_array_equal(rows, want_r)
    np.testing.assert_array_equal(cols, want_c)
    np.testing.assert_array_equal(m, full[rows, cols])
