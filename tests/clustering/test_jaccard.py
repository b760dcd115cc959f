"""k-reciprocal Jaccard distances of the clustering round against a NumPy transcription.

The reference below transcribes the algorithm of SpCL's ``compute_jaccard_distance``
(Ge et al., NeurIPS 2020; reused by cluster contrast and PPLR) with dense N x N
matrices and Python loops: k1-NN lists (the image itself first), k-reciprocal sets
from the first k1 + 1 list entries (all k1 when only k1 were searched), half sets of
round(k1 / 2), the 2/3 expansion rule, softmax(-(2 - 2 cos)) weights on R*, local query
expansion over the first k2 neighbours, 1 - m / (2 - m), clipped at 0.
"""

import numpy as np
import pytest
import scipy.sparse
import sklearn.cluster

from reid_jax.clustering import pseudo_labels


def _reference_jaccard(x, k1, k2):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = x.shape[0]
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    rank = np.argsort(d, axis=1, kind="stable")[:, :k1]  # what a k1-NN search returns

    def recip(i, k):
        fwd = rank[i, : k + 1]
        bwd = rank[fwd, : k + 1]
        return fwd[np.where(bwd == i)[0]]

    half = int(np.around(k1 / 2))
    v = np.zeros((n, n))
    for i in range(n):
        r = recip(i, k1)
        expanded = r
        for c in r:
            rc = recip(c, half)
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                expanded = np.append(expanded, rc)
        expanded = np.unique(expanded)
        w = np.exp(-d[i, expanded])
        v[i, expanded] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jac = np.zeros((n, n))
    for i in range(n):
        m = np.minimum(v[i][None, :], v).sum(axis=1)
        jac[i] = 1 - m / (2 - m)
    return np.maximum(jac, 0.0)


def _blobs(n, d, centers, seed, spread=0.4):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    return (c[rng.integers(0, centers, n)] + spread * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("n,d,k1,k2,seed", [(60, 8, 10, 4, 0), (120, 16, 30, 6, 1), (50, 4, 7, 1, 2)])
def test_sparse_jaccard_matches_reference(n, d, k1, k2, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    want = _reference_jaccard(x.astype(np.float64), k1, k2)
    got = pseudo_labels.jaccard_distances(x, k1, k2)
    assert scipy.sparse.issparse(got)
    dense = np.ones((n, n))
    coo = got.tocoo()
    dense[coo.row, coo.col] = coo.data
    np.testing.assert_allclose(dense, want, atol=2e-5)
    # Missing entries are exactly the pairs whose encodings share nothing.
    assert np.all(want[dense == 1.0] > 1 - 1e-6)
    np.testing.assert_allclose(np.diag(got.toarray()), 0.0, atol=1e-6)


def test_threshold_keeps_exactly_the_pairs_within_max_distance():
    x = _blobs(100, 8, 5, seed=4)
    want = _reference_jaccard(x.astype(np.float64), 15, 6)
    got = pseudo_labels.jaccard_distances(x, 15, 6, max_distance=0.5).tocoo()
    stored = np.zeros(want.shape, bool)
    stored[got.row, got.col] = True
    np.testing.assert_array_equal(stored, (want <= 0.5) | np.eye(100, dtype=bool))
    np.testing.assert_allclose(got.data, want[got.row, got.col], atol=2e-5)


def test_sparse_dbscan_equals_dense_dbscan_on_reference():
    x = _blobs(150, 16, 6, seed=3)
    want_dist = _reference_jaccard(x.astype(np.float64), 20, 6)
    want = sklearn.cluster.DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(want_dist)
    got = pseudo_labels.dbscan(pseudo_labels.jaccard_distances(x, 20, 6), eps=0.6, min_samples=4)
    assert want.max() >= 2, "the blobs should give several clusters"
    np.testing.assert_array_equal(got, want)


def test_restrict_graph_keeps_explicit_zeros_and_drops_far_pairs():
    data = np.array([0.0, 0.7, 0.2, 0.0, 0.9, 0.0], np.float32)
    indices = np.array([0, 1, 2, 1, 0, 2])
    indptr = np.array([0, 3, 4, 6])
    g = scipy.sparse.csr_matrix((data, indices, indptr), shape=(3, 3))
    r = pseudo_labels.restrict_graph(g, 0.5)
    assert r.nnz == 4  # the 0.7 and 0.9 entries go, the three zeros stay explicit
    np.testing.assert_array_equal(r.indptr, [0, 2, 3, 4])
    np.testing.assert_array_equal(r.indices, [0, 2, 1, 2])


@pytest.mark.parametrize("max_distance", [1.0, 0.6])
def test_graph_is_symmetric_and_backend_independent(monkeypatch, max_distance):
    from reid_jax.clustering import jaccard
    from reid_jax.evaluation import neighbors

    x = _blobs(160, 12, 6, seed=5)
    want = _reference_jaccard(x.astype(np.float64), 20, 6)
    graphs = {}
    for backend in ("host", "device"):
        search = neighbors.knn_search
        monkeypatch.setattr(
            jaccard.neighbors, "knn_search",
            lambda *a, backend=backend, search=search, **kw: search(*a, **{**kw, "backend": backend}),
        )
        graphs[backend] = pseudo_labels.jaccard_distances(x, 20, 6, max_distance=max_distance)
        monkeypatch.undo()
    for g in graphs.values():
        assert (g != g.T).nnz == 0  # mirrored, so exactly symmetric
        coo = g.tocoo()
        np.testing.assert_allclose(coo.data, want[coo.row, coo.col], atol=2e-5)
        stored = np.zeros(want.shape, bool)
        stored[coo.row, coo.col] = True
        if max_distance < 1:
            np.testing.assert_array_equal(stored, (want <= max_distance) | np.eye(160, dtype=bool))
    # Same pairs; values equal up to the last bits of the two backends' matmuls.
    np.testing.assert_array_equal(graphs["host"].indptr, graphs["device"].indptr)
    np.testing.assert_array_equal(graphs["host"].indices, graphs["device"].indices)
    np.testing.assert_allclose(graphs["host"].data, graphs["device"].data, atol=1e-6)


def test_min_sum_floor_brackets_the_threshold():
    from reid_jax.clustering import jaccard
    from reid_jax.evaluation import kreciprocal

    for eps in (0.0, 0.3, 0.5, 0.6, 0.95):
        floor = jaccard.min_sum_floor(eps)
        m = np.linspace(max(floor - 1e-3, 0.0), 1.0, 20001).astype(np.float32)
        jac = np.maximum(kreciprocal.jaccard_from_min_sums(m), np.float32(0.0))
        assert floor <= 0.99
        assert not np.any((jac <= eps) & (m < floor))  # no pair within eps below the floor
    assert jaccard.min_sum_floor(1.0) == 0.0
