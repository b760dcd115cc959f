"""CUHK03 classic single-gallery-shot protocol.

Li, Zhao, Xiao & Wang, "DeepReID: Deep Filter Pairing Neural Network for Person
Re-identification", CVPR 2014: 20 random splits of 100 test identities, and for each
query a gallery holding ONE image per identity. As in torchreid's ``eval_cuhk03``:

* per query, gallery images of the same identity AND camera are removed (and, as in
  the Market protocol here, junk identity -1);
* the single image per identity is drawn at random, ``num_repeats = 10`` times; the
  CMC of a query is the average over the draws;
* AP (and INP) are computed on the full, non-sampled remaining gallery, once per query.

The draws come from ``numpy.random.default_rng(seed)``, so a result is reproducible;
torchreid draws from NumPy's global state.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from reid_jax.evaluation import protocols

NUM_REPEATS = 10  # torchreid eval_cuhk03


def evaluate_cuhk03_classic(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = 50,
    num_repeats: int = NUM_REPEATS,
    seed: int = 0,
) -> dict:
    """Single-gallery-shot CMC (averaged over random draws) and full-gallery mAP/mINP.

    Args:
      distmat: [q, g] distances.
      q_pids: [q] query identities.
      g_pids: [g] gallery identities.
      q_camids: [q] query cameras.
      g_camids: [g] gallery cameras.
      max_rank: CMC depth.
      num_repeats: random single-shot galleries drawn per query.
      seed: seed of the draws.

    Returns:
      dict with the keys of ``protocols.evaluate_market``.
    """
    distmat = np.asarray(distmat)
    q_pids = np.asarray(q_pids).astype(np.int64)
    g_pids = np.asarray(g_pids).astype(np.int64)
    q_camids = np.asarray(q_camids).astype(np.int64)
    g_camids = np.asarray(g_camids).astype(np.int64)
    protocols.check_max_rank(max_rank, distmat.shape[1])
    full = protocols.query_stats(distmat, q_pids, g_pids, q_camids, g_camids)
    rng = np.random.default_rng(seed)
    cmc_sum = np.zeros(max_rank)
    for i in np.flatnonzero(full.valid):
        order = protocols.stable_ranking(distmat[i:i + 1])[0]
        keep, match = protocols.valid_mask(g_pids[order][None], g_camids[order][None],
                                           q_pids[i:i + 1], q_camids[i:i + 1])
        pids = g_pids[order][keep[0]]
        hits = match[0][keep[0]]
        for _ in range(num_repeats):
            # One random image per identity: the one with the largest random key.
            key = rng.random(pids.shape[0])
            by_pid = np.lexsort((key, pids))
            last = np.ones(by_pid.shape[0], bool)
            last[:-1] = pids[by_pid][1:] != pids[by_pid][:-1]
            chosen = np.sort(by_pid[last])  # ranked order of the drawn images
            first = np.flatnonzero(hits[chosen])[0]  # one true match is always drawn
            cmc_sum[first:] += 1.0
    n_valid = int(full.valid.sum())
    if n_valid == 0:
        raise ValueError('No query has a valid match in the gallery.')
    result = protocols.summarize(full, max_rank)
    cmc = cmc_sum / (n_valid * num_repeats)
    result['cmc'] = cmc
    for k in protocols.REPORTED_RANKS:
        result[f'rank{k}'] = float(cmc[min(k, max_rank) - 1])
    return result
