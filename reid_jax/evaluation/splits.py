"""Mean and standard deviation of results over random identity splits.

Small benchmarks (VIPeR, GRID, PRID2011, QMUL iLIDS, CUHK01) are reported as the mean
over 10 random train/test identity splits (Gray et al., ECCV 2008 for VIPeR; torchreid
and MetaBIN report the mean of 10 splits; torchreid also evaluates both VIPeR camera
directions, giving 20). This helper only aggregates: splitting is the data
pipeline's job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCALAR_KEYS = ('mAP', 'mINP', 'rank1', 'rank5', 'rank10', 'rank20')


def aggregate_splits(results: Sequence[dict]) -> dict:
    """Mean and (population) standard deviation of per-split protocol results.

    Args:
      results: one dict per split, as returned by ``protocols.evaluate_market`` or
        ``cuhk03.evaluate_cuhk03_classic`` (same ``max_rank`` for all).

    Returns:
      dict with, for every scalar metric ``m`` present in all splits, ``m`` (mean)
      and ``m_std``; 'cmc' and 'cmc_std' (per rank); 'num_splits'.
    """
    if not results:
        raise ValueError('No split results to aggregate.')
    out: dict = {'num_splits': len(results)}
    for key in SCALAR_KEYS:
        if all(key in r for r in results):
            values = np.array([r[key] for r in results], np.float64)
            out[key] = float(values.mean())
            out[f'{key}_std'] = float(values.std())
    if all('cmc' in r for r in results):
        cmc = np.stack([np.asarray(r['cmc'], np.float64) for r in results])
        out['cmc'] = cmc.mean(axis=0)
        out['cmc_std'] = cmc.std(axis=0)
    return out


def one_per_identity(person_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of one random picture per identity (> 0), plus every junk (-1) and
    distractor (0) picture; sorted. The single-shot subsets of query and gallery."""
    pids = np.asarray(person_ids)
    order = rng.permutation(len(pids))
    _, first = np.unique(pids[order], return_index=True)
    chosen = order[first]
    chosen = chosen[pids[chosen] > 0]
    return np.sort(np.concatenate([chosen, np.flatnonzero(pids <= 0)]))
