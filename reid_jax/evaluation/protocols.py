"""Image re-ID protocols: CMC, mAP and mINP under the Market-1501 rules.

Market-1501 protocol (Zheng et al., "Scalable Person Re-identification: A Benchmark",
ICCV 2015), as implemented by torchreid (``eval_market1501``) and fast-reid, and used
unchanged for DukeMTMC-reID and MSMT17:

* for each query, gallery images with the same identity AND the same camera are
  ignored (they are not a cross-camera retrieval);
* gallery images with identity -1 ("junk") are ignored for every query;
* distractors (identity 0) stay in the gallery as negatives;
* queries with no remaining true match are skipped, and every average is over the
  valid queries.

Metrics per valid query, with ranks counted after the removals above:

* CMC: 1 at every rank r >= rank of the first true match;
* AP: non-interpolated average precision, the mean of precision@rank over the ranks
  of the true matches (torchreid/fast-reid; Zheng's MATLAB code uses a trapezoid
  rule, which gives slightly different numbers);
* INP: (number of true matches) / (rank of the hardest true match), from Ye et al.,
  "Deep Learning for Person Re-identification: A Survey and Outlook" (AGW), TPAMI 2021.

Ranking rule: the gallery is ordered by a *stable* ascending sort of the distances,
so equal distances are ranked by gallery index (lower index first). torchreid uses
NumPy's default (unstable) quicksort, whose tie order is unspecified; with
continuous features ties are rare and the results agree.
"""

from __future__ import annotations

import typing
import warnings

import numpy as np
from numpy.typing import ArrayLike

JUNK_PID = -1
REPORTED_RANKS = (1, 5, 10, 20)
# Host working set per block of queries: about this many (query, gallery) cells.
_CELLS_PER_BLOCK = 1 << 22


class QueryStats(typing.NamedTuple):
    """Per-query outcome of the protocol; everything else is an average of these.

    Attributes:
      valid: [q] bool, the query has at least one true match after the removals.
      ap: [q] float64 average precision (0 for invalid queries).
      inp: [q] float64 inverse negative penalty (0 for invalid queries).
      first_rank: [q] int64 1-based rank of the first true match (0 if invalid).
    """

    valid: np.ndarray
    ap: np.ndarray
    inp: np.ndarray
    first_rank: np.ndarray


def _as_ids(x: ArrayLike, name: str, n: int) -> np.ndarray:
    arr = np.asarray(x).astype(np.int64, copy=False).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f'{name} has {arr.shape[0]} entries, expected {n}.')
    return arr


def stable_ranking(distances: np.ndarray) -> np.ndarray:
    """Gallery order per query: ascending distance, ties by gallery index.

    Args:
      distances: [q, g] distances.

    Returns:
      [q, g] int64 gallery indices, nearest first.
    """
    return np.argsort(distances, axis=-1, kind='stable')


def valid_mask(
    ranked_pids: np.ndarray,
    ranked_camids: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Which ranked gallery entries count for the protocol, and which are true matches.

    Args:
      ranked_pids: [q, n] identities of the gallery entries in ranked order.
      ranked_camids: [q, n] cameras of the same entries.
      q_pids: [q] query identities.
      q_camids: [q] query cameras.

    Returns:
      ``(keep, match)``, both [q, n] bool: ``keep`` drops same-identity-same-camera
      entries and junk (identity -1); ``match`` is a kept entry of the query's identity.
    """
    same_id = ranked_pids == q_pids[:, None]
    same_cam = ranked_camids == q_camids[:, None]
    keep = ~((same_id & same_cam) | (ranked_pids == JUNK_PID))
    return keep, same_id & keep


def query_stats_from_ranking(
    order: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> QueryStats:
    """Protocol statistics of a block of queries given their full gallery ranking.

    Args:
      order: [b, g] gallery indices, nearest first (a full ranking of each row).
      q_pids: [b] query identities.
      g_pids: [g] gallery identities.
      q_camids: [b] query cameras.
      g_camids: [g] gallery cameras.

    Returns:
      The block's ``QueryStats``.
    """
    keep, match = valid_mask(g_pids[order], g_camids[order], q_pids, q_camids)
    num_rel = match.sum(axis=1)
    valid = num_rel > 0
    # 1-based rank of every kept entry once the removed ones are taken out.
    rank = np.cumsum(keep, axis=1, dtype=np.int64)
    hits = np.cumsum(match, axis=1, dtype=np.int64)
    precision_sum = np.where(match, hits / np.maximum(rank, 1), 0.0).sum(axis=1)
    first = np.argmax(match, axis=1)
    last = match.shape[1] - 1 - np.argmax(match[:, ::-1], axis=1)
    rows = np.arange(order.shape[0])
    first_rank = np.where(valid, rank[rows, first], 0)
    last_rank = np.where(valid, rank[rows, last], 1)
    denom = np.maximum(num_rel, 1)
    ap = np.where(valid, precision_sum / denom, 0.0)
    inp = np.where(valid, num_rel / last_rank, 0.0)
    return QueryStats(valid, ap, inp, first_rank)


def concat_stats(parts: typing.Sequence[QueryStats]) -> QueryStats:
    """Concatenates per-block statistics in query order.

    Args:
      parts: statistics of consecutive query blocks.

    Returns:
      One ``QueryStats`` over all queries.
    """
    return QueryStats(*(np.concatenate(field) for field in zip(*parts)))


def summarize(stats: QueryStats, max_rank: int = 50) -> dict:
    """Averages per-query statistics over the valid queries.

    Args:
      stats: per-query statistics of every query.
      max_rank: length of the returned CMC curve.

    Returns:
      dict with 'cmc' ([max_rank] float64, fraction of valid queries whose first true
      match is within rank r + 1), 'mAP', 'mINP', 'num_valid_queries' and
      'rank1', 'rank5', 'rank10', 'rank20' (floats in [0, 1]).

    Raises:
      ValueError: if no query has a true match in the gallery.
    """
    n_valid = int(stats.valid.sum())
    if n_valid == 0:
        raise ValueError(
            'No query has a valid match in the gallery (after removing junk and '
            'same-identity-same-camera images); cannot compute CMC/mAP.'
        )
    first = stats.first_rank[stats.valid]
    # Counting queries per first-match rank and accumulating gives the CMC at every
    # depth without a per-rank pass; ranks past the gallery size saturate at 1.
    counts = np.bincount(np.minimum(first, max_rank + 1), minlength=max_rank + 2)
    cmc = np.cumsum(counts[1:max_rank + 1]) / n_valid
    result = {
        'cmc': cmc.astype(np.float64),
        'mAP': float(stats.ap[stats.valid].mean()),
        'mINP': float(stats.inp[stats.valid].mean()),
        'num_valid_queries': n_valid,
    }
    for k in REPORTED_RANKS:
        result[f'rank{k}'] = float(np.mean(first <= k))
    return result


def check_max_rank(max_rank: int, num_gallery: int) -> None:
    """Warns (as torchreid does) when the CMC depth exceeds the gallery size."""
    if max_rank < 1:
        raise ValueError(f'max_rank must be >= 1, got {max_rank}.')
    if num_gallery < max_rank:
        warnings.warn(
            f'Gallery has {num_gallery} images, fewer than max_rank={max_rank}; CMC '
            f'entries past rank {num_gallery} repeat the value at rank {num_gallery}.',
            stacklevel=3,
        )


def evaluate_market(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = 50,
) -> dict:
    """CMC, mAP and mINP under the Market-1501 protocol (see module docstring).

    Args:
      distmat: [q, g] query-gallery distances (smaller is more similar).
      q_pids: [q] query identities.
      g_pids: [g] gallery identities (-1 junk, 0 distractor).
      q_camids: [q] query cameras.
      g_camids: [g] gallery cameras.
      max_rank: CMC depth. When it exceeds the gallery size a warning is issued
        and the curve keeps ``max_rank`` entries (constant past the gallery size).

    Returns:
      dict with 'cmc' ([max_rank] float64), 'mAP', 'mINP', 'num_valid_queries',
      'rank1', 'rank5', 'rank10', 'rank20'; rates are fractions in [0, 1].

    Raises:
      ValueError: on mismatched shapes, or if no query has a valid match.
    """
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f'distmat must be 2-D, got shape {distmat.shape}.')
    num_q, num_g = distmat.shape
    q_pids = _as_ids(q_pids, 'q_pids', num_q)
    q_camids = _as_ids(q_camids, 'q_camids', num_q)
    g_pids = _as_ids(g_pids, 'g_pids', num_g)
    g_camids = _as_ids(g_camids, 'g_camids', num_g)
    check_max_rank(max_rank, num_g)
    block = max(1, _CELLS_PER_BLOCK // max(num_g, 1))
    parts = []
    for s in range(0, num_q, block):
        order = stable_ranking(distmat[s:s + block])
        parts.append(
            query_stats_from_ranking(order, q_pids[s:s + block], g_pids, q_camids[s:s + block], g_camids)
        )
    if not parts:
        raise ValueError('No queries given.')
    return summarize(concat_stats(parts), max_rank)


def ranked_valid_gallery(
    distances: ArrayLike,
    q_pid: int,
    q_camid: int,
    g_pids: ArrayLike,
    g_camids: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """The gallery as the protocol sees it for one query: ranked, removals applied.

    Args:
      distances: [g] distances from the query to the gallery.
      q_pid: query identity.
      q_camid: query camera.
      g_pids: [g] gallery identities.
      g_camids: [g] gallery cameras.

    Returns:
      ``(indices, is_match)``: kept gallery indices nearest first, and whether each
      is a true match.
    """
    distances = np.asarray(distances).reshape(1, -1)
    g_pids = np.asarray(g_pids).astype(np.int64)
    g_camids = np.asarray(g_camids).astype(np.int64)
    order = stable_ranking(distances)
    keep, match = valid_mask(g_pids[order], g_camids[order], np.array([q_pid]), np.array([q_camid]))
    return order[0][keep[0]], match[0][keep[0]]
