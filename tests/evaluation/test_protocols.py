"""Tests for reid_jax.evaluation.protocols (Market-1501 protocol)."""

import warnings

import numpy as np
import pytest

from reid_jax.evaluation import protocols

# Gallery shared by the hand-computed cases: (pid, camid) per index.
#   g0: pid 1, cam 0    g1: pid -1 (junk), cam 1    g2: pid 2, cam 1
#   g3: pid 1, cam 1    g4: pid 0 (distractor), cam 2
#   g5: pid 1, cam 2    g6: pid 3, cam 0
G_PIDS = np.array([1, -1, 2, 1, 0, 1, 3])
G_CAMS = np.array([0, 1, 1, 1, 2, 2, 0])
Q_PIDS = np.array([1, 2, 3, 1])
Q_CAMS = np.array([0, 0, 0, 3])
DISTMAT = np.array(
    [
        # q0 (pid 1, cam 0): g0 removed (same id + cam), g1 junk removed.
        # Kept order: g2 neg (r1), g3 match (r2), g4 distractor neg (r3),
        # g5 match (r4), g6 neg (r5).
        # AP = (1/2 + 2/4) / 2 = 0.5; first match rank 2; INP = 2/4 = 0.5.
        # (Dropping the distractor would give (1/2 + 2/3)/2: it must stay.)
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        # q1 (pid 2, cam 0): g1 junk removed; g2 is a match at rank 1.
        # AP = 1; first rank 1; INP = 1/1 = 1.
        [0.5, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7],
        # q2 (pid 3, cam 0): the only pid-3 gallery image g6 is in cam 0 -> removed,
        # no valid match -> skipped.
        [0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        # q3 (pid 1, cam 3): all distances tie, so the order is the gallery index.
        # Kept: g0 match (r1), g2 neg (r2), g3 match (r3), g4 neg (r4),
        # g5 match (r5), g6 neg (r6).
        # AP = (1/1 + 2/3 + 3/5) / 3 = 34/45; first rank 1; INP = 3/5.
        [0.5] * 7,
    ]
)
EXPECTED_AP = np.array([0.5, 1.0, 34 / 45])
EXPECTED_INP = np.array([0.5, 1.0, 0.6])
EXPECTED_FIRST = np.array([2, 1, 1])


def test_hand_computed_market_protocol():
    res = protocols.evaluate_market(DISTMAT, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    assert res['num_valid_queries'] == 3
    np.testing.assert_allclose(res['mAP'], EXPECTED_AP.mean())
    np.testing.assert_allclose(res['mINP'], EXPECTED_INP.mean())
    np.testing.assert_allclose(res['cmc'], [2 / 3, 1, 1, 1, 1])
    np.testing.assert_allclose(res['rank1'], 2 / 3)
    for k in (5, 10, 20):
        assert res[f'rank{k}'] == 1.0


def test_tie_rule_is_gallery_index():
    # g2 (neg, index 2) ties with g3 (match, index 3): the lower index ranks first.
    d = np.array([[9.0, 9.0, 0.5, 0.5, 9.0, 9.0, 9.0]])
    # q pid 1 cam 0: kept order by distance then index: g2 (neg), g3 (match), then
    # ties at 9.0 by index: g4 (neg), g5 (match), g6 (neg); g0 removed, g1 junk.
    # AP = (1/2 + 2/4) / 2 = 0.5, first rank 2.
    res = protocols.evaluate_market(d, [1], G_PIDS, [0], G_CAMS, max_rank=3)
    np.testing.assert_allclose(res['mAP'], 0.5)
    np.testing.assert_allclose(res['cmc'], [0, 1, 1])


def test_max_rank_larger_than_gallery_warns_and_keeps_length():
    with pytest.warns(UserWarning, match='max_rank'):
        res = protocols.evaluate_market(DISTMAT, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=10)
    assert res['cmc'].shape == (10,)
    np.testing.assert_allclose(res['cmc'][1:], 1.0)


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match='valid match'):
        protocols.evaluate_market(DISTMAT[2:3], Q_PIDS[2:3], G_PIDS, Q_CAMS[2:3], G_CAMS, max_rank=5)


def _reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Straightforward per-query loop, written independently of the library."""
    cmcs, aps, inps = [], [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind='stable')
        kept = [
            j for j in order
            if g_pids[j] != -1 and not (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])
        ]
        hits = np.array([g_pids[j] == q_pids[i] for j in kept], dtype=float)
        if hits.sum() == 0:
            continue
        positions = np.flatnonzero(hits) + 1  # 1-based ranks of the true matches
        aps.append(np.mean([(n + 1) / p for n, p in enumerate(positions)]))
        inps.append(len(positions) / positions[-1])
        cmc = np.zeros(max_rank)
        cmc[positions[0] - 1:] = 1.0
        cmcs.append(cmc)
    return np.mean(cmcs, axis=0), np.mean(aps), np.mean(inps), len(aps)


@pytest.mark.parametrize('seed,offset', [(0, 0.0), (1, -10.0)])
def test_matches_numpy_reference_on_random_data(seed, offset):
    rng = np.random.default_rng(seed)
    nq, ng = 40, 300
    q_pids = rng.integers(1, 30, nq)
    g_pids = rng.integers(-1, 30, ng)  # includes junk (-1) and distractors (0)
    q_cams = rng.integers(0, 4, nq)
    g_cams = rng.integers(0, 4, ng)
    # Quantised distances create many ties; the offset makes some negative (and -0.0).
    distmat = rng.integers(0, 20, (nq, ng)).astype(np.float32) + np.float32(offset)
    distmat[distmat == 0] = -0.0
    cmc, m_ap, m_inp, n_valid = _reference(distmat, q_pids, g_pids, q_cams, g_cams, 50)
    res = protocols.evaluate_market(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50)
    assert res['num_valid_queries'] == n_valid
    np.testing.assert_allclose(res['cmc'], cmc, atol=1e-12)
    np.testing.assert_allclose(res['mAP'], m_ap, atol=1e-12)
    np.testing.assert_allclose(res['mINP'], m_inp, atol=1e-12)
    for k in (1, 5, 10, 20):
        np.testing.assert_allclose(res[f'rank{k}'], cmc[k - 1], atol=1e-12)


def test_small_blocks_give_same_result(monkeypatch):
    rng = np.random.default_rng(3)
    distmat = rng.random((17, 60))
    q_pids, g_pids = rng.integers(0, 5, 17), rng.integers(-1, 5, 60)
    q_cams, g_cams = rng.integers(0, 3, 17), rng.integers(0, 3, 60)
    full = protocols.evaluate_market(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    monkeypatch.setattr(protocols, '_CELLS_PER_BLOCK', 3 * 60)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        blocked = protocols.evaluate_market(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    for key in ('mAP', 'mINP', 'rank1', 'num_valid_queries'):
        assert full[key] == blocked[key]
    np.testing.assert_array_equal(full['cmc'], blocked['cmc'])


def test_ranked_valid_gallery_applies_removals():
    idx, match = protocols.ranked_valid_gallery(DISTMAT[0], 1, 0, G_PIDS, G_CAMS)
    np.testing.assert_array_equal(idx, [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(match, [False, True, False, True, False])
