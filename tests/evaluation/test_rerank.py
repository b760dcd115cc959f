"""Tests for reid_jax.evaluation.rerank against a loop transcription of Zhong et al."""

import numpy as np
import pytest

from reid_jax.evaluation import kreciprocal, rerank


def _features(seed, n, ids=40, d=32, noise=0.7):
    """Clustered features: a few images per identity, like a re-ID test set."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, d))
    return (centres[rng.integers(0, ids, n)] + noise * rng.normal(size=(n, d))).astype(np.float32)


def _reference_encoding(dist, length, k1, k2):
    """V of Zhong et al. (Eq. 3-7, 11), one image at a time, in float64."""
    n = dist.shape[0]
    rank = np.argsort(dist, axis=1, kind='stable')

    def k_reciprocal(i, list_len):
        forward = rank[i, :list_len]
        return np.array([j for j in forward if i in rank[j, :list_len]])

    v = np.zeros((n, n))
    half_len = int(np.around(k1 / 2)) + 1
    for i in range(n):
        r = k_reciprocal(i, length)
        expanded = list(r)
        for cand in r:
            h = k_reciprocal(cand, half_len)
            if len(np.intersect1d(h, r)) > 2 / 3 * len(h):
                expanded.extend(h)
        expanded = np.unique(expanded)
        w = np.exp(-dist[i, expanded])
        v[i, expanded] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    return v


def _jaccard(va, vb):
    mins = np.minimum(va[:, None, :], vb[None, :, :]).sum(-1)
    maxs = np.maximum(va[:, None, :], vb[None, :, :]).sum(-1)
    return 1.0 - mins / maxs


def _reference_rerank(qf, gf, k1, k2, lam):
    feats = np.concatenate([qf, gf]).astype(np.float64)
    nq = qf.shape[0]
    sq = (feats ** 2).sum(1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * feats @ feats.T, 0)
    original = dist / dist.max(axis=1, keepdims=True)
    v = _reference_encoding(original, k1 + 1, k1, k2)
    return (1 - lam) * _jaccard(v[:nq], v[nq:]) + lam * original[:nq, nq:]


@pytest.fixture(scope='module')
def small_problem():
    f = _features(0, 300)
    return f[:60], f[60:]


@pytest.fixture(scope='module')
def small_reference(small_problem):
    return _reference_rerank(*small_problem, k1=20, k2=6, lam=0.3)


def test_dense_matches_reference(small_problem, small_reference):
    out = rerank.k_reciprocal_rerank_dense(*small_problem)
    assert out.shape == (60, 240) and out.dtype == np.float32
    np.testing.assert_allclose(out, small_reference, atol=1e-5)


def test_bounded_matches_reference(small_problem, small_reference):
    out = rerank.k_reciprocal_rerank(*small_problem, chunk_size=16)
    np.testing.assert_allclose(out, small_reference, atol=1e-5)


def test_bounded_without_cached_query_rows(small_problem, small_reference):
    blocks = rerank.iter_k_reciprocal_rerank(*small_problem, chunk_size=25, cache_bytes=0)
    out = np.concatenate([b for _, b in blocks])
    np.testing.assert_allclose(out, small_reference, atol=1e-5)


@pytest.mark.parametrize('k1,k2,lam', [(5, 1, 0.0), (7, 3, 0.5)])
def test_other_parameters_match_reference(k1, k2, lam):
    f = _features(1, 120, ids=20)
    expected = _reference_rerank(f[:30], f[30:], k1, k2, lam)
    np.testing.assert_allclose(
        rerank.k_reciprocal_rerank(f[:30], f[30:], k1, k2, lam, chunk_size=7), expected, atol=1e-5
    )
    np.testing.assert_allclose(
        rerank.k_reciprocal_rerank_dense(f[:30], f[30:], k1, k2, lam), expected, atol=1e-5
    )


def test_bounded_matches_dense_on_larger_problem():
    f = _features(2, 1200, ids=300, d=64)
    q, g = f[:200], f[200:]
    dense = rerank.k_reciprocal_rerank_dense(q, g)
    blocks = list(rerank.iter_k_reciprocal_rerank(q, g, chunk_size=64, knn_chunk_size=256))
    assert [s for s, _ in blocks] == [0, 64, 128, 192]
    np.testing.assert_allclose(np.concatenate([b for _, b in blocks]), dense, atol=1e-5)


def test_expansion_rule_on_hand_built_ranking():
    # 4 points; ranking rows (self first). length 3, half 2.
    ranking = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]])
    # R(0) from lists of length 3: 1 has 0 in [1, 0, 3] -> yes; 2 has 0 in [2, 3, 0]
    # -> yes. R(0) = {0, 1, 2}. Half sets (length 2): R(1) = {1, 0}, R(2) = {2, 3}.
    # |R(2) & R(0)| = 1 > 2/3 * 2? no. |R(1) & R(0)| = 2 > 4/3: yes (adds nothing new).
    members, counts = kreciprocal.expanded_sets(ranking, 3, 2)
    assert list(members[0, :counts[0]]) == [0, 1, 2]
    # R(3): lists [3, 2, 1]; 2 has 3 in [2, 3, 0] yes; 1 has 3 in [1, 0, 3] yes ->
    # {1, 2, 3}. Half: R(2) = {2, 3} fully inside -> accepted; R(1) = {0, 1}: overlap 1,
    # not > 4/3. R*(3) = {1, 2, 3}.
    assert list(members[3, :counts[3]]) == [1, 2, 3]


def test_half_length_rounds_half_to_even():
    assert kreciprocal.half_length(20) == 11
    assert kreciprocal.half_length(30) == 16
    assert kreciprocal.half_length(5) == 3  # around(2.5) = 2


def _reference_jaccard(f, k1, k2):
    f = f.astype(np.float64)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    dist = np.maximum(2 - 2 * f @ f.T, 0)
    v = _reference_encoding(dist, k1, k1, k2)  # faiss searches k1 neighbours (self included)
    return np.maximum(_jaccard(v, v), 0)


def test_jaccard_matches_reference_sparse_and_dense():
    f = _features(3, 400, ids=100, noise=0.3) * 3.0  # unnormalised on purpose
    expected = _reference_jaccard(f, 30, 6)
    dense = rerank.k_reciprocal_jaccard(f, 30, 6, output='dense', chunk_size=64)
    np.testing.assert_allclose(dense, expected, atol=1e-5)
    sparse = rerank.k_reciprocal_jaccard(f, 30, 6, chunk_size=64)
    # Pairs not stored have distance exactly 1.
    filled = np.ones_like(dense)
    coo = sparse.tocoo()
    filled[coo.row, coo.col] = coo.data
    np.testing.assert_allclose(filled, expected, atol=1e-5)
    assert sparse.nnz < 400 * 400
    np.testing.assert_allclose(sparse.diagonal(), 0.0, atol=1e-6)
