"""Tests for reid_jax.evaluation.query_expansion against a NumPy loop."""

import numpy as np

from reid_jax.evaluation import query_expansion


def _reference(qf, gf, k, alpha):
    f = np.concatenate([qf, gf]).astype(np.float64)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    out = np.empty_like(f)
    for i in range(len(f)):
        sims = f @ f[i]
        top = np.argsort(-sims, kind='stable')[:k]
        out[i] = (np.maximum(sims[top], 0)[:, None] ** alpha * f[top]).sum(0)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out[:len(qf)], out[len(qf):]


def test_alpha_qe_matches_reference():
    rng = np.random.default_rng(0)
    qf, gf = rng.normal(size=(13, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    q, g = query_expansion.alpha_query_expansion(qf, gf, k=4, alpha=3.0, chunk_size=16)
    rq, rg = _reference(qf, gf, 4, 3.0)
    np.testing.assert_allclose(q, rq, atol=1e-5)
    np.testing.assert_allclose(g, rg, atol=1e-5)


def test_k1_is_identity_on_normalised_features():
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(5, 6)), rng.normal(size=(9, 6))
    q, g = query_expansion.alpha_query_expansion(qf, gf, k=1)
    np.testing.assert_allclose(q, qf / np.linalg.norm(qf, axis=1, keepdims=True), atol=1e-6)
