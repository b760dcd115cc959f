"""Tests for reid_jax.evaluation.evaluate (streamed evaluation from features)."""

import numpy as np
import pytest

from reid_jax.evaluation import distance, evaluate, protocols, rerank


def _problem(seed=0, nq=40, ng=200, ids=30, d=16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, d))
    q_pids = rng.integers(1, ids, nq)
    g_pids = rng.integers(0, ids, ng)
    g_pids[rng.random(ng) < 0.05] = -1  # junk
    qf = centres[q_pids] + 0.8 * rng.normal(size=(nq, d))
    gf = centres[np.maximum(g_pids, 0)] + 0.8 * rng.normal(size=(ng, d))
    return (qf.astype(np.float32), gf.astype(np.float32), q_pids, g_pids,
            rng.integers(0, 3, nq), rng.integers(0, 3, ng))


@pytest.mark.parametrize('metric', ['euclidean', 'cosine'])
def test_streamed_equals_full_matrix(metric):
    qf, gf, qp, gp, qc, gc = _problem()
    full = protocols.evaluate_market(distance.pairwise_distances(qf, gf, metric), qp, gp, qc, gc)
    streamed = evaluate.evaluate_features(qf, gf, qp, gp, qc, gc, metric=metric, chunk_size=7)
    for key in ('mAP', 'mINP', 'rank1', 'rank5', 'num_valid_queries'):
        assert streamed[key] == pytest.approx(full[key], abs=1e-12)
    np.testing.assert_allclose(streamed['cmc'], full['cmc'])


def test_streamed_rerank_equals_dense_rerank():
    qf, gf, qp, gp, qc, gc = _problem(1)
    dense = rerank.k_reciprocal_rerank_dense(qf, gf)
    full = protocols.evaluate_market(dense, qp, gp, qc, gc)
    streamed = evaluate.evaluate_features(qf, gf, qp, gp, qc, gc, rerank=True, chunk_size=16)
    for key in ('mAP', 'mINP', 'rank1', 'num_valid_queries'):
        assert streamed[key] == pytest.approx(full[key], abs=1e-9)


def test_aqe_option_runs_and_changes_features():
    qf, gf, qp, gp, qc, gc = _problem(2)
    plain = evaluate.evaluate_features(qf, gf, qp, gp, qc, gc, metric='cosine')
    expanded = evaluate.evaluate_features(qf, gf, qp, gp, qc, gc, metric='cosine', aqe_k=3)
    assert expanded['num_valid_queries'] == plain['num_valid_queries']
    assert expanded['mAP'] != plain['mAP']
