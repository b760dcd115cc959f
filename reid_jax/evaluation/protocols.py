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
so equal distances are ranked by gallery index (lower index first); -0.0 equals 0.0.
Distances are compared as float32 (float64 inputs are rounded first, which can turn
values closer than float32 resolution into ties). torchreid uses
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
# Small blocks stay in cache; at Market size 64 rows run ~3x faster than 1024.
_CELLS_PER_BLOCK = 1 << 20


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
    """Which gallery entries count for the protocol, and which are true matches.

    Args:
      ranked_pids: [q, n] identities of the gallery entries (any order).
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


def _index_bits(num_gallery: int) -> int:
    return max(1, int(num_gallery - 1).bit_length())


def max_block_rows(num_gallery: int) -> int:
    """Most queries ``query_stats`` takes at once (its sort keys pack row, distance, index)."""
    return 1 << (63 - 32 - _index_bits(num_gallery))


def block_rows(num_gallery: int) -> int:
    """Queries per ``query_stats`` call that keep its working set in cache."""
    return max(1, min(_CELLS_PER_BLOCK // max(num_gallery, 1), max_block_rows(num_gallery)))


def _order_keys(distances: np.ndarray, index_bits: int) -> np.ndarray:
    """int64 keys whose order is (row, distance, gallery index), i.e. the stable ranking."""
    d = np.ascontiguousarray(distances, np.float32) + np.float32(0.0)  # -0.0 -> 0.0
    bits = d.view(np.int32)
    # Order-preserving map of IEEE floats to integers: flip the magnitude bits of
    # negative numbers, then shift into [0, 2^32).
    mono = (bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))).astype(np.int64) + (1 << 31)
    mono <<= index_bits
    mono |= np.arange(d.shape[1], dtype=np.int64)[None, :]
    mono |= (np.arange(d.shape[0], dtype=np.int64) << (32 + index_bits))[:, None]
    return mono


def query_stats(
    distances: ArrayLike,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> QueryStats:
    """Protocol statistics of a block of queries, without sorting the gallery.

    Only the ranks of the true matches matter for CMC, AP and INP. A true match's
    rank is 1 + (true matches before it) + (kept negatives before it), so the true
    matches of each row are sorted and every kept negative is located among them
    with one binary search; a histogram of those positions gives all the ranks.
    Comparisons use the key (distance, gallery index), the order of a stable sort.

    Args:
      distances: [b, g] distances of a block of queries (b <= ``max_block_rows(g)``).
      q_pids: [b] query identities.
      g_pids: [g] gallery identities.
      q_camids: [b] query cameras.
      g_camids: [g] gallery cameras.

    Returns:
      The block's ``QueryStats``.
    """
    distances = np.asarray(distances)
    b, g = distances.shape
    bits = _index_bits(g)
    if b > max_block_rows(g):
        raise ValueError(f'At most {max_block_rows(g)} queries per block, got {b}.')
    keep, match = valid_mask(g_pids[None, :], g_camids[None, :], q_pids, q_camids)
    distances = np.ascontiguousarray(distances, np.float32)
    keys = _order_keys(distances, bits)
    num_rel = match.sum(axis=1)
    pos_keys = np.sort(keys[match])  # row-major: sorted within each row
    # Negatives ranked after a row's last true match change nothing: skip them
    # (with good features that is most of the gallery).
    last = np.where(match, distances, -np.inf).max(axis=1)
    neg_keys = keys[keep & ~match & (distances <= last[:, None])]
    del keys
    n_pos = pos_keys.shape[0]
    # Slot of every negative among its row's true matches; each row owns
    # num_rel + 1 consecutive slots, hence the "+ row".
    neg_row = neg_keys >> (32 + bits)
    slot = np.searchsorted(pos_keys, neg_keys) + neg_row
    cum = np.cumsum(np.bincount(slot, minlength=n_pos + b))
    pos_row = np.repeat(np.arange(b), num_rel)
    start = np.concatenate([[0], np.cumsum(num_rel)[:-1]])
    t = np.arange(n_pos) - start[pos_row]  # index of the match within its row
    own = np.arange(n_pos) + pos_row  # this match's slot
    base = own - t - 1  # slot before the row's first one
    negatives_before = cum[own] - np.where(base >= 0, cum[np.maximum(base, 0)], 0)
    rank = 1 + t + negatives_before
    valid = num_rel > 0
    precision_sum = np.bincount(pos_row, weights=(t + 1) / rank, minlength=b)
    first_rank = np.zeros(b, np.int64)
    last_rank = np.ones(b, np.int64)
    first_rank[valid] = rank[start[valid]]
    last_rank[valid] = rank[start[valid] + num_rel[valid] - 1]
    ap = np.where(valid, precision_sum / np.maximum(num_rel, 1), 0.0)
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
    block = block_rows(num_g)
    parts = [
        query_stats(distmat[s:s + block], q_pids[s:s + block], g_pids, q_camids[s:s + block], g_camids)
        for s in range(0, num_q, block)
    ]
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
