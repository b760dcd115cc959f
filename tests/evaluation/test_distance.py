"""Tests for reid_jax.evaluation.distance against NumPy float64."""

import numpy as np
import pytest

from reid_jax.evaluation import distance


def _features(seed, n, d=16):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize('chunk_size', [4096, 7, 1])
def test_euclidean_matches_numpy(chunk_size):
    q, g = _features(0, 23), _features(1, 31)
    expected = np.sqrt(((q[:, None, :].astype(np.float64) - g[None]) ** 2).sum(-1))
    out = distance.pairwise_distances(q, g, 'euclidean', chunk_size=chunk_size)
    assert out.dtype == np.float32 and out.shape == (23, 31)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_sqeuclidean_and_identical_vectors_are_zero():
    q = _features(2, 5)
    out = distance.pairwise_distances(q, q, 'sqeuclidean')
    np.testing.assert_allclose(np.diag(out), 0.0, atol=1e-4)
    assert (out >= 0).all()


def test_cosine_matches_numpy():
    q, g = _features(3, 9) * 5.0, _features(4, 12)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    out = distance.pairwise_distances(q, g, 'cosine', chunk_size=4)
    np.testing.assert_allclose(out, 1.0 - qn.astype(np.float64) @ gn.T, atol=1e-6)


def test_chunks_cover_all_rows():
    q, g = _features(5, 10), _features(6, 4)
    starts = [(s, b.shape) for s, b in distance.iter_distance_chunks(q, g, chunk_size=4)]
    assert starts == [(0, (4, 4)), (4, (4, 4)), (8, (2, 4))]


def test_bad_inputs():
    with pytest.raises(ValueError, match='metric'):
        distance.pairwise_distances(_features(0, 2), _features(1, 2), 'manhattan')
    with pytest.raises(ValueError, match='features'):
        distance.pairwise_distances(_features(0, 2), _features(1, 2, d=3))
