"""Sparse k-reciprocal encodings and their Jaccard distances.

Building blocks of k-reciprocal re-ranking (Zhong, Zheng, Cao & Li, "Re-ranking Person
Re-identification with k-reciprocal Encoding", CVPR 2017, Sec. 3) kept sparse, so that
memory grows with N x (neighbourhood size) instead of N x N:

* ``R(p, k)``: the members of p's k-nearest-neighbour list that also have p in
  their own k-nearest-neighbour list (Eq. 3-4);
* ``R*(p, k1)``: ``R(p, k1)`` united with ``R(q, round(k1/2))`` for every q in it
  whose set overlaps ``R(p, k1)`` in more than 2/3 of its elements (Eq. 5);
* ``V_p``: Gaussian-kernel weights ``exp(-d(p, g))`` on ``R*(p, k1)``, normalised to
  sum to 1 (Eq. 7; the official code normalises rather than using binary weights);
* local query expansion ``V_p <- mean of V over p's k2 nearest neighbours`` (Eq. 11);
* Jaccard distance ``1 - sum min(V_p, V_g) / sum max(V_p, V_g)`` (Eq. 10), computed as
  ``1 - m / (2 - m)`` with ``m = sum min`` because every V sums to 1 (official code).

"k nearest neighbours" is counted as in the reference code: the list is a prefix of
the row's ranking, which starts with the point itself. Zhong's code takes
``k1 + 1`` entries for ``R(p, k1)`` and ``round(k1/2) + 1`` for the half sets; the
clustering pipelines (SpCL, cluster contrast) search ``k1`` neighbours with faiss and
so take ``k1`` entries for ``R(p, k1)``. Callers pass the list lengths explicitly.

Weights and query expansion are sparse ``scipy.sparse`` CSR matrices; the Jaccard
sums ``m`` are accumulated only over pairs that share a non-zero column (an inverted
index, like the official code's ``invIndex``), in vectorised NumPy on the host.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

# 2/3 expansion threshold (Zhong et al. 2017, Sec. 3.3 and the official code).
EXPANSION_OVERLAP = 2.0 / 3.0
# Host working-set budgets (elements) for the vectorised steps. The Jaccard scatter
# is bound by cache misses: small blocks keep its [rows, g] accumulator in cache
# (about 6x faster at Market size than one large block).
_SET_BLOCK_ELEMS = 1 << 23
_JACCARD_BLOCK_ELEMS = 1 << 18
_JACCARD_BLOCK_CELLS = 1 << 19


def half_length(k1: int) -> int:
    """Ranking prefix used for the half sets: ``round(k1 / 2) + 1``.

    ``np.around`` rounds halves to even, as the official code does
    (``int(np.around(k1 / 2))``), so k1 = 5 gives 2 + 1.
    """
    return int(np.around(k1 / 2)) + 1


def reciprocal_mask(ranking: np.ndarray, length: int) -> np.ndarray:
    """Which members of each neighbour list have the row in their own list.

    Args:
      ranking: [n, >= length] neighbour indices per row, nearest first.
      length: list length to use (a prefix of ``ranking``).

    Returns:
      [n, length] bool: ``mask[i, a]`` iff ``i`` is in ``ranking[ranking[i, a], :length]``.
    """
    lists = np.ascontiguousarray(ranking[:, :length])
    n = lists.shape[0]
    out = np.empty(lists.shape, bool)
    block = max(1, _SET_BLOCK_ELEMS // (length * length))
    for s in range(0, n, block):
        back = lists[lists[s:s + block]]  # [b, length, length]
        me = np.arange(s, s + back.shape[0])[:, None, None]
        out[s:s + block] = (back == me).any(axis=-1)
    return out


def expanded_sets(ranking: np.ndarray, length: int, half: int) -> tuple[np.ndarray, np.ndarray]:
    """The expanded k-reciprocal sets R*(p, k1) of every row.

    Args:
      ranking: [n, >= max(length, half)] neighbour indices, nearest first.
      length: list length of R(p, k1) (k1 + 1 in Zhong's code, k1 in SpCL's).
      half: list length of the half sets R(q, round(k1 / 2)).

    Returns:
      ``(members, counts)``: ``members`` is [n, m] int32, each row's set in ascending
      index order followed by padding with the value n; ``counts`` is [n] int64.
    """
    n = ranking.shape[0]
    lists = np.ascontiguousarray(ranking[:, :length]).astype(np.int64)
    halves = np.ascontiguousarray(ranking[:, :half]).astype(np.int64)
    rec = reciprocal_mask(ranking, length)
    rec_half = reciprocal_mask(ranking, half)
    half_size = rec_half.sum(axis=1)
    width = length + length * half
    members = np.empty((n, width), np.int64)
    block = max(1, _SET_BLOCK_ELEMS // (length * half * length))
    for s in range(0, n, block):
        e = min(n, s + block)
        own = np.where(rec[s:e], lists[s:e], -1)  # R(p, k1); -1 = not a member
        cand = lists[s:e]  # candidates q; only those with rec are used
        cand_sets = np.where(rec_half[cand], halves[cand], -2)  # R(q, k1/2); -2 = none
        in_own = (cand_sets[..., None] == own[:, None, None, :]).any(axis=-1)
        overlap = in_own.sum(axis=-1)
        # Same float comparison as the official code (len(...) > 2/3 * len(...)).
        accept = rec[s:e] & (overlap > EXPANSION_OVERLAP * half_size[cand])
        added = np.where(accept[..., None], cand_sets, -1).reshape(e - s, -1)
        rows = np.concatenate([own, added], axis=1)
        rows[rows < 0] = n
        rows.sort(axis=1)
        dup = np.zeros(rows.shape, bool)
        dup[:, 1:] = rows[:, 1:] == rows[:, :-1]
        rows[dup] = n
        rows.sort(axis=1)
        members[s:e] = rows
    counts = (members < n).sum(axis=1)
    width = int(max(counts.max(initial=0), 1))
    return members[:, :width].astype(np.int32), counts


def encode(members: np.ndarray, counts: np.ndarray, distances: np.ndarray, n: int) -> scipy.sparse.csr_matrix:
    """Gaussian-kernel weights on the expanded sets, each row normalised to sum 1.

    Args:
      members: [n, m] expanded sets padded with n (from ``expanded_sets``).
      counts: [n] set sizes.
      distances: [n, m] distances from each row to its members (padding ignored);
        already scaled as the caller's convention requires.
      n: number of points (matrix width).

    Returns:
      [n, n] float32 CSR matrix V.
    """
    valid = members < n
    # Subtracting the row minimum leaves exp(-d) / sum exp(-d) unchanged and keeps
    # large unnormalised distances from underflowing to 0 / 0.
    shifted = distances - np.min(np.where(valid, distances, np.inf), axis=1, keepdims=True)
    w = np.where(valid, np.exp(-shifted.astype(np.float64)), 0.0)
    w /= w.sum(axis=1, keepdims=True)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return scipy.sparse.csr_matrix(
        (w[valid].astype(np.float32), members[valid].astype(np.int32), indptr), shape=(n, n)
    )


def query_expansion(v: scipy.sparse.csr_matrix, ranking: np.ndarray, k2: int) -> scipy.sparse.csr_matrix:
    """Local query expansion: each row becomes the mean of its k2 nearest rows.

    Args:
      v: [n, n] CSR encoding.
      ranking: [n, >= k2] neighbour indices, nearest first (the row itself first).
      k2: rows averaged; 1 returns ``v`` unchanged, as in the official code.

    Returns:
      [n, n] float32 CSR matrix.
    """
    if k2 <= 1:
        return v
    n = v.shape[0]
    cols = np.ascontiguousarray(ranking[:, :k2]).reshape(-1)
    avg = scipy.sparse.csr_matrix(
        (np.full(cols.shape, 1.0 / k2, np.float32), cols, np.arange(0, n * k2 + 1, k2)),
        shape=(n, n),
    )
    out = (avg @ v).tocsr()
    out.sort_indices()
    return out


def min_sums(rows: scipy.sparse.csr_matrix, inverted: scipy.sparse.csr_matrix) -> np.ndarray:
    """``m[i, j] = sum_k min(rows[i, k], cols[j, k])`` over shared non-zeros.

    Args:
      rows: [b, n] CSR encodings of the probes.
      inverted: [n, g] CSR whose row k lists the candidates j with a non-zero
        weight on k (the transpose of the candidates' encodings).

    Returns:
      [b, g] float32 sums of minima (accumulated in float64 per block).
    """
    b, g = rows.shape[0], inverted.shape[1]
    out = np.zeros((b, g), np.float32)
    row_nnz = np.diff(rows.indptr)
    col_len = np.diff(inverted.indptr)
    # Work per probe row = number of (k, j) pairs it touches; split rows to bound it.
    touched = np.zeros(rows.nnz + 1, np.int64)
    np.cumsum(col_len[rows.indices], out=touched[1:])
    work = touched[rows.indptr[1:]] - touched[rows.indptr[:-1]]
    max_rows = max(1, _JACCARD_BLOCK_CELLS // max(g, 1))
    bounds = [0]
    acc = 0
    for i, wk in enumerate(work.tolist()):
        if i > bounds[-1] and (acc + wk > _JACCARD_BLOCK_ELEMS or i - bounds[-1] >= max_rows):
            bounds.append(i)
            acc = 0
        acc += wk
    bounds.append(b)
    for s, e in zip(bounds[:-1], bounds[1:]):
        lo, hi = rows.indptr[s], rows.indptr[e]
        ks = rows.indices[lo:hi]
        vals = rows.data[lo:hi]
        local_row = np.repeat(np.arange(e - s), row_nnz[s:e])
        starts = inverted.indptr[ks]
        lens = col_len[ks]
        total = int(lens.sum())
        if total == 0:
            continue
        # Positions of every (entry, candidate) pair in the inverted index.
        offsets = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        cand = inverted.indices[offsets]
        contrib = np.minimum(np.repeat(vals, lens), inverted.data[offsets])
        flat = np.repeat(local_row, lens) * g + cand
        out[s:e] = np.bincount(flat, weights=contrib, minlength=(e - s) * g).reshape(e - s, g)
    return out


def upper_min_sums(
    v: scipy.sparse.csr_matrix, min_value: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m[i, j] = sum_k min(v[i, k], v[j, k])`` of the pairs ``i <= j`` with ``m >= min_value``.

    ``m`` is symmetric, so only the upper triangle is accumulated: through the inverted
    index, row i only visits the candidates ``j >= i`` of each of its columns (the
    tail of the column's sorted list that starts at i itself), half the work of
    ``min_sums``.
    Each row's sums are accumulated in float64, column by column in increasing order,
    exactly as ``min_sums`` does for row i or for row j, so ``m[i, j]`` has the same
    bits as either ``min_sums`` entry. The threshold is applied while each small block
    of sums is in cache, so the dense block never leaves it.

    Args:
      v: [n, n] CSR encodings (any row order of the non-zeros).
      min_value: keep the pairs with ``m >= min_value`` (float64 sums) and ``m > 0``.

    Returns:
      ``(rows, cols, m)``: int64 rows <= cols, ascending by row then column, and the
      float32 sums.
    """
    v = v.tocsr()
    if not v.has_sorted_indices:
        v = v.sorted_indices()
    n = v.shape[0]
    # Transposing a copy whose values are the entry numbers tells where each entry
    # (i, k) lands in the inverted index: row k, at candidate j = i itself, which is
    # where the candidates j >= i of that column start (rows are sorted).
    entry = scipy.sparse.csr_matrix(
        (np.arange(1, v.nnz + 1, dtype=np.int64), v.indices, v.indptr), shape=v.shape
    ).T.tocsr()
    entry.sort_indices()
    starts = np.empty(v.nnz, np.int64)
    starts[entry.data - 1] = np.arange(v.nnz)
    inverted = scipy.sparse.csr_matrix(
        (v.data[entry.data - 1], entry.indices, entry.indptr), shape=v.shape
    )
    owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(v.indptr))
    lens = inverted.indptr[v.indices + 1] - starts
    touched = np.zeros(v.nnz + 1, np.int64)
    np.cumsum(lens, out=touched[1:])
    work = touched[v.indptr]  # pairs visited before each row
    rows_out, cols_out, m_out = [], [], []
    s = 0
    while s < n:
        width = n - s
        max_rows = max(1, _JACCARD_BLOCK_CELLS // width)
        e = int(np.searchsorted(work, work[s] + _JACCARD_BLOCK_ELEMS, side="right")) - 1
        e = min(n, max(s + 1, min(e, s + max_rows)))
        lo, hi = v.indptr[s], v.indptr[e]
        seg_lens = lens[lo:hi]
        total = int(work[e] - work[s])
        if total:
            excl = np.cumsum(seg_lens) - seg_lens
            offsets = np.repeat(starts[lo:hi] - excl, seg_lens) + np.arange(total)
            base = (owner[lo:hi] - s) * width - s
            flat = np.repeat(base, seg_lens) + inverted.indices[offsets]
            contrib = np.minimum(np.repeat(v.data[lo:hi], seg_lens), inverted.data[offsets])
            acc = np.bincount(flat, weights=contrib, minlength=(e - s) * width)
            hit = np.flatnonzero((acc >= min_value) & (acc > 0))
            rows_out.append(hit // width + s)
            cols_out.append(hit % width + s)
            m_out.append(acc[hit].astype(np.float32))
        s = e
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(m_out)


def jaccard_from_min_sums(m: np.ndarray) -> np.ndarray:
    """Jaccard distance ``1 - m / (2 - m)`` of encodings that each sum to 1."""
    return 1.0 - m / (2.0 - m)
