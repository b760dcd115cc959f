"""Exact k-nearest-neighbour search in bounded memory, on the accelerator or the host.

k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017) and the Jaccard distance of the clustering
pipelines (Ge et al., SpCL, NeurIPS 2020; Dai et al., cluster contrast, ACCV 2022) only
look at each image's first k1 + 1 neighbours, plus the largest distance of each row
(Zhong's code divides every row of the squared-distance matrix by its maximum). This
module computes exactly those from the features, one block of rows at a time, so the
N x N matrix (35 GB at MSMT17's 93,820 test images) is never built.

Distances are squared Euclidean, ``|x|^2 + |y|^2 - 2 x.y`` in float32 with full
matmul precision, clamped at 0 (cancellation can leave -1e-7 on the diagonal).

What the search promises about ties, on any machine and BLAS:

- **Exact duplicates tie exactly.** Identical feature rows are searched once
  (``knn_search`` deduplicates them first) and share one distance value, so the copies
  of a row always appear together, in index order, and every copy of a row gets the
  same list. Without this, a blocked matmul rounds ``a.x`` and ``a.x'`` (``x' == x``)
  differently depending on where x and x' fall in their blocks, and the order of the
  copies depends on the BLAS kernel and its thread count.
- **Other near-ties follow float32 rounding.** Equal float32 distances are ordered by
  the lower index (``jax.lax.top_k`` keeps the first of equal values, the order a
  stable argsort gives); distances that differ only by rounding can come in either
  order on different machines. The k distances returned are the k smallest up to that
  rounding.

Two backends (``knn_search(backend=...)``): JAX device blocks with ``top_k`` merges,
and, the default when JAX runs on the CPU, NumPy BLAS blocks with threshold-filtered
merges (``knn_search_host``): at Market-1501 size (12,936 x 2048-d, k = 30) on a
shared 2-core CPU about 5 s against 9-10 s, nearly all of it the float32 matmul.
"""

from __future__ import annotations

import functools
import typing

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from reid_jax import vectors

_PRECISION = jax.lax.Precision.HIGHEST
BACKENDS = ("auto", "device", "host")


class Neighbors(typing.NamedTuple):
    """k nearest neighbours of every row (the row itself included, usually first).

    Attributes:
      indices: [n, k] int32 neighbour indices, nearest first.
      distances: [n, k] float32 squared Euclidean distances to them.
      row_max: [n] float32 largest squared distance of each row over all n points
        (None from the host search when not asked for).
      head: [keep_rows, n] float32 full distance rows of the first ``keep_rows``
        points when asked for (re-ranking reuses the query rows), else None.
    """

    indices: np.ndarray
    distances: np.ndarray
    row_max: np.ndarray | None
    head: np.ndarray | None = None


def _merge(vals: jax.Array, idx: jax.Array, new_d: jax.Array, offset: jax.Array, k: int):
    """Merges a block of distances into a running top-k (smallest first)."""
    neg, pos = jax.lax.top_k(-new_d, k)
    # Running entries come first: they hold lower column indices, so ties keep the
    # lower index, as one stable sort of the whole row would.
    all_neg = jnp.concatenate([-vals, neg], axis=1)
    all_idx = jnp.concatenate([idx, pos.astype(jnp.int32) + offset], axis=1)
    best, where = jax.lax.top_k(all_neg, k)
    return -best, jnp.take_along_axis(all_idx, where, axis=1)


_State = tuple[jax.Array, jax.Array, jax.Array]  # (top-k distances, indices, row max)


def _pair_update(
    feats: jax.Array,
    sqnorm: jax.Array,
    off_i: jax.Array,
    off_j: jax.Array,
    n: jax.Array,
    state_i: _State,
    state_j: _State,
    k: int,
    diagonal: bool,
    return_block: bool,
) -> tuple[_State, _State, jax.Array | None]:
    """One block pair (I, J), I <= J: updates rows I with S and rows J with S^T."""
    b = state_i[0].shape[0]
    fi = jax.lax.dynamic_slice_in_dim(feats, off_i, b)
    fj = jax.lax.dynamic_slice_in_dim(feats, off_j, b)
    d = vectors.sq_euclidean(
        fi,
        fj,
        jax.lax.dynamic_slice_in_dim(sqnorm, off_i, b),
        jax.lax.dynamic_slice_in_dim(sqnorm, off_j, b),
    )
    block = d if return_block else None
    col_valid = (off_j + jnp.arange(b)) < n
    row_valid = (off_i + jnp.arange(b)) < n
    vals_i, idx_i, max_i = state_i
    d_i = jnp.where(col_valid[None, :], d, jnp.inf)
    vals_i, idx_i = _merge(vals_i, idx_i, d_i, off_j, k)
    max_i = jnp.maximum(max_i, jnp.max(jnp.where(col_valid[None, :], d, -jnp.inf), axis=1))
    if diagonal:
        return (vals_i, idx_i, max_i), state_j, block
    vals_j, idx_j, max_j = state_j
    d_j = jnp.where(row_valid[None, :], d.T, jnp.inf)
    vals_j, idx_j = _merge(vals_j, idx_j, d_j, off_i, k)
    max_j = jnp.maximum(max_j, jnp.max(jnp.where(row_valid[None, :], d.T, -jnp.inf), axis=1))
    return (vals_i, idx_i, max_i), (vals_j, idx_j, max_j), block


_pair_update_jit = jax.jit(_pair_update, static_argnames=('k', 'diagonal', 'return_block'))


def knn_search(
    features: ArrayLike, k: int, chunk_size: int = 1024, keep_rows: int = 0,
    backend: str = "auto", row_max: bool = True,
) -> Neighbors:
    """The k nearest neighbours of every row among all rows (itself included).

    The distance matrix is symmetric, so only the blocks (I, J) with I <= J are
    computed; each serves the top-k of row block I and, transposed, of row block J.
    Both backends return the k smallest distances of each row, ties broken by the
    lower index (the order of a stable argsort); exact duplicate rows are searched
    once, so their copies tie exactly (see the module docstring). Other distances can
    differ in the last bits between backends and BLAS kernels (summation orders).

    Args:
      features: [n, d] features.
      k: neighbours per row (clipped to n).
      chunk_size: block size; a few ``chunk_size x chunk_size`` distance blocks are
        held at a time. On the device path 1024 was fastest on a 2-core CPU at Market
        size (14 CPU-s against 18 for 2048 and 16 for 512).
      keep_rows: also return the full distance rows of the first ``keep_rows``
        points (``Neighbors.head``, keep_rows x n floats on the host).
      backend: ``'device'`` (blocks on the JAX device, ``jax.lax.top_k`` merges),
        ``'host'`` (NumPy BLAS blocks, threshold-filtered merges; see
        ``knn_search_host``) or ``'auto'``: host when JAX runs on the CPU.
      row_max: whether ``Neighbors.row_max`` is needed; the host path skips it (and
        most distance computations) when False and returns None there.

    Returns:
      ``Neighbors`` with host arrays.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    feats = np.asarray(features, np.float32) + np.float32(0.0)  # -0.0 -> +0.0
    unique = _unique_rows(feats)
    if unique is None:
        return _search(feats, k, chunk_size, keep_rows, backend, row_max)
    first, inverse, members = unique
    n, k = feats.shape[0], min(k, feats.shape[0])
    keep_rows = min(max(keep_rows, 0), n)
    # The unique rows are numbered by first occurrence, so those of the first
    # `keep_rows` points are the first `keep_u` unique rows.
    keep_u = int(inverse[:keep_rows].max()) + 1 if keep_rows else 0
    nb = _search(feats[first], k, chunk_size, keep_u, backend, row_max)
    indices, distances = _expand(nb.indices, nb.distances, members, k)
    head = nb.head[inverse[:keep_rows]][:, inverse] if keep_rows else None
    row_max_out = nb.row_max[inverse] if nb.row_max is not None else None
    return Neighbors(indices[inverse], distances[inverse], row_max_out, head)


def _unique_rows(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None:
    """(first index of each unique row, [n] unique row of each row, members of each
    unique row in index order), unique rows numbered by first occurrence; None when
    every row is unique."""
    n = feats.shape[0]
    if n < 2:
        return None
    rows = np.ascontiguousarray(feats).view(np.dtype((np.void, feats.itemsize * feats.shape[1])))
    _, first, inverse = np.unique(rows.ravel(), return_index=True, return_inverse=True)
    if first.size == n:
        return None
    order = np.argsort(first, kind="stable")  # unique ids by first occurrence
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    inverse = rank[inverse.ravel()]
    by_unique = np.argsort(inverse, kind="stable")  # rows grouped, index order inside
    bounds = np.cumsum(np.bincount(inverse, minlength=order.size))[:-1]
    return first[order], inverse, np.split(by_unique, bounds)


def _expand(
    idx: np.ndarray, dist: np.ndarray, members: list[np.ndarray], k: int, rows: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour lists of unique rows -> lists over all rows: each unique neighbour is
    replaced by its copies, ordered by (distance, index), cut at k."""
    counts = np.array([m.size for m in members])
    cap = int(min(counts.max(), k))
    table = np.full((len(members), cap), np.iinfo(np.int64).max, np.int64)
    for u, m in enumerate(members):
        table[u, : min(m.size, cap)] = m[:cap]
    out_idx = np.empty((idx.shape[0], k), np.int32)
    out_dist = np.empty((idx.shape[0], k), np.float32)
    for r0 in range(0, idx.shape[0], rows):
        cand = table[idx[r0:r0 + rows]]  # [r, k_u, cap] original indices (max = empty)
        d = np.broadcast_to(dist[r0:r0 + rows, :, None], cand.shape)
        valid = cand != np.iinfo(np.int64).max
        keys = np.where(valid, _keys(d, np.where(valid, cand, 0)), _NO_KEY)
        keys = np.sort(keys.reshape(keys.shape[0], -1), axis=1)[:, :k]
        out_idx[r0:r0 + rows] = (keys & 0xFFFFFFFF).astype(np.int32)
        out_dist[r0:r0 + rows] = _key_distances(keys)
    return out_idx, out_dist


def _search(
    feats: np.ndarray, k: int, chunk_size: int, keep_rows: int, backend: str, row_max: bool
) -> Neighbors:
    """``knn_search`` over rows taken as they are (duplicates not merged)."""
    if backend == "host" or (backend == "auto" and jax.default_backend() == "cpu"):
        return knn_search_host(feats, k, chunk_size=chunk_size, keep_rows=keep_rows, row_max=row_max)
    feats = jnp.asarray(feats, jnp.float32)
    n = feats.shape[0]
    k = min(k, n)
    b = max(k, min(chunk_size, n))
    n_blocks = -(-n // b)
    if n_blocks * b != n:
        feats = jnp.pad(feats, ((0, n_blocks * b - n), (0, 0)))
    sqnorm = jnp.sum(feats * feats, axis=1)
    keep_rows = min(max(keep_rows, 0), n)
    head = np.empty((keep_rows, n), np.float32) if keep_rows else None
    states = [
        (jnp.full((b, k), jnp.inf, jnp.float32), jnp.zeros((b, k), jnp.int32),
         jnp.full((b,), -jnp.inf, jnp.float32))
        for _ in range(n_blocks)
    ]
    for i in range(n_blocks):
        for j in range(i, n_blocks):
            wanted = i * b < keep_rows  # j >= i, so this also covers block j's rows
            new_i, new_j, block = _pair_update_jit(
                feats,
                sqnorm,
                jnp.int32(i * b),
                jnp.int32(j * b),
                jnp.int32(n),
                states[i],
                states[j],
                k=k,
                diagonal=i == j,
                return_block=wanted,
            )
            states[j] = new_j  # unchanged when i == j; new_i must win then
            states[i] = new_i
            if wanted:
                _store_head(head, np.asarray(block), i * b, j * b, keep_rows, n)
    vals, idx, row_max = (np.concatenate([np.asarray(s[f]) for s in states])[:n] for f in range(3))
    return Neighbors(idx.astype(np.int32), vals.astype(np.float32), row_max.astype(np.float32), head)


def _store_head(head: np.ndarray, block: np.ndarray, r0: int, c0: int, keep: int, n: int) -> None:
    """Copies the kept rows of a block (rows r0.., cols c0..) and of its transpose."""
    b = block.shape[0]
    rows, cols = min(b, keep - r0), min(b, n - c0)
    head[r0:r0 + rows, c0:c0 + cols] = block[:rows, :cols]
    if c0 != r0 and c0 < keep:
        rows_t, cols_t = min(b, keep - c0), min(b, n - r0)
        head[c0:c0 + rows_t, r0:r0 + cols_t] = block[:cols_t, :rows_t].T


# Host search: each running top-k entry is one int64 key, (float32 bits of the distance
# << 32) | index. Distances are >= +0.0, whose bit patterns order like the floats, so
# sorting keys orders by (distance, index): the stable-argsort order, in one sort.
_NO_KEY = (0x7F800000 << 32) | 0xFFFFFFFF  # distance +inf: a slot not filled yet


def _keys(d: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Sort keys of (distance >= 0, index) pairs; -0.0 becomes +0.0 first."""
    bits = np.add(d, np.float32(0.0), dtype=np.float32).view(np.uint32)
    return (bits.astype(np.int64) << 32) | idx.astype(np.int64)


def _key_distances(keys: np.ndarray) -> np.ndarray:
    """float32 distances of keys (+inf for unfilled slots)."""
    return (keys >> 32).astype(np.uint32).view(np.float32)


def _merge_keys(state: np.ndarray, targets: np.ndarray, keys: np.ndarray) -> None:
    """Merges candidate keys into the sorted rows ``state[targets]`` (in place).

    Each row keeps its k smallest keys. A (target, neighbour) pair is offered at most
    once over the whole search, so no key is duplicated.
    """
    if targets.size == 0:
        return
    k = state.shape[1]
    order = np.argsort(targets, kind="stable")
    t, keys = targets[order], keys[order]
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    counts = np.diff(np.r_[starts, t.size])
    rows = t[starts]
    table = np.full((rows.size, k + int(counts.max())), _NO_KEY, np.int64)
    table[:, :k] = state[rows]
    group = np.repeat(np.arange(rows.size), counts)
    table[group, k + np.arange(t.size) - starts[group]] = keys
    table.sort(axis=1)
    state[rows] = table[:, :k]


@functools.partial(jax.jit, static_argnames="k")
def _top_k_smallest(d: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    neg, pos = jax.lax.top_k(-d, k)  # equal values: the lower index first
    return -neg, pos


def _host_dots(fa: np.ndarray, fb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``fa @ fb.T`` (float32 BLAS) written into the flat buffer ``out``."""
    m, p = fa.shape[0], fb.shape[0]
    return np.matmul(fa, fb.T, out=out[:m * p].reshape(m, p))


def _to_distances(dots: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """In place: ``(|a|^2 + |b|^2) + (-2 a.b)`` clamped at 0, as ``vectors.sq_euclidean``."""
    dots *= -2.0
    dots += np.add.outer(sa, sb)
    return np.maximum(dots, 0.0, out=dots)


def _pair_distances(dots: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """``_to_distances`` of single entries (the same float32 operations, so equal bits)."""
    return np.maximum((sa + sb) + dots * np.float32(-2.0), np.float32(0.0))


def _dot_floor(s_own: np.ndarray, s_other: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """float32 lower bounds on ``a.b`` for distances ``<= tau`` (one per own row).

    ``d = fl(fl(|a|^2 + |b|^2) - 2 a.b) <= tau`` implies ``a.b >= (|a|^2 + |b|^2 - tau)
    / 2`` up to float32 rounding of a few units of 2^-24 relative; the slack below
    covers it 16 times over, and taking the smallest ``|b|^2`` of the block covers
    every b. Entries above the bound are candidates, re-checked exactly by the merge.
    """
    s_min, s_max = float(s_other.min()), float(s_other.max())
    tau = tau.astype(np.float64)
    slack = 1e-6 * (np.abs(tau) + s_own + s_max + 1.0)
    floor = (s_own.astype(np.float64) + s_min - tau) / 2.0 - slack
    return np.nextafter(floor.astype(np.float32), np.float32(-np.inf))


def _flat_pairs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the True entries of a 2-D mask (flatnonzero is ~7x np.nonzero)."""
    flat = np.flatnonzero(mask)
    return flat // mask.shape[1], flat % mask.shape[1]


def knn_search_host(
    features: ArrayLike, k: int, chunk_size: int = 2048, keep_rows: int = 0,
    row_max: bool = True,
) -> Neighbors:
    """``knn_search`` on the host: NumPy (BLAS) matmuls and threshold-filtered merges.

    On a CPU the float32 BLAS matmul is faster than XLA's, and most of the device
    path's time goes to ``top_k`` over every block and its transpose. Here the
    diagonal blocks come first and give every row a full running top-k (``top_k`` of
    its own block). Each off-diagonal block (I, J), I < J, then only offers the
    entries within the current k-th distance ``tau`` of their row: row-wise for the
    rows of I, column-wise for those of J (no transpose). With near-constant squared
    norms (L2-normalised features) that filter is a comparison of the dot products
    with one bound per row (``a.b >= (|a|^2 + |b|^2 - tau) / 2`` less a rounding
    slack), so the distances are only computed for the few candidates. Candidates are
    merged by one sort of (distance, index) keys. Exact: an entry farther than the
    current k-th can never enter the final list, and ties keep the lower index.

    Args:
      features: [n, d] features.
      k: neighbours per row (clipped to n).
      chunk_size: block size (rows are split into equal blocks of at most this).
      keep_rows: also return the full distance rows of the first ``keep_rows`` points.
      row_max: compute ``Neighbors.row_max`` (needs every distance); when False it
        is None and blocks with near-constant norms skip the full distance matrix.

    Returns:
      ``Neighbors`` with host arrays.
    """
    feats = np.ascontiguousarray(np.asarray(features, np.float32))
    n = feats.shape[0]
    k = min(k, n)
    n_blocks = -(-n // max(1, min(chunk_size, n)))
    bounds = np.linspace(0, n, n_blocks + 1).round().astype(np.int64)
    b = int(np.diff(bounds).max())
    sq = np.einsum("ij,ij->i", feats, feats)
    keep_rows = min(max(keep_rows, 0), n)
    head = np.empty((keep_rows, n), np.float32) if keep_rows else None
    state = np.full((n, k), _NO_KEY, np.int64)
    rmax = np.full((n,), -np.inf, np.float32) if row_max else None
    # Comparing dot products against one bound per row is exact up to the spread of
    # |b|^2 in the block; beyond a small spread it would let too many entries through.
    spread = float(sq.max() - sq.min()) if n else 0.0
    dots_filter = not row_max and not keep_rows and spread <= 1e-3 * max(float(sq.max()), 1e-30)
    buf = np.empty((b * b,), np.float32)
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        d = _to_distances(_host_dots(feats[r0:r1], feats[r0:r1], buf), sq[r0:r1], sq[r0:r1])
        kk = min(k, r1 - r0)
        vals, pos = (np.asarray(a) for a in _top_k_smallest(d, kk))
        state[r0:r1, :kk] = _keys(vals, pos + r0)
        if rmax is not None:
            np.maximum(rmax[r0:r1], d.max(axis=1), out=rmax[r0:r1])
        if r0 < keep_rows:
            head[r0:min(r1, keep_rows), r0:r1] = d[:keep_rows - r0]
    for i in range(n_blocks):
        r0, r1 = bounds[i], bounds[i + 1]
        for j in range(i + 1, n_blocks):
            c0, c1 = bounds[j], bounds[j + 1]
            dots = _host_dots(feats[r0:r1], feats[c0:c1], buf)
            tau_r = _key_distances(state[r0:r1, -1])
            tau_c = _key_distances(state[c0:c1, -1])
            if dots_filter:
                rr, cc = _flat_pairs(dots >= _dot_floor(sq[r0:r1], sq[c0:c1], tau_r)[:, None])
                rt, ct = _flat_pairs(dots >= _dot_floor(sq[c0:c1], sq[r0:r1], tau_c)[None, :])
                rows, cols = np.concatenate([rr, rt]), np.concatenate([cc, ct])
                dist = _pair_distances(dots[rows, cols], sq[rows + r0], sq[cols + c0])
            else:
                d = _to_distances(dots, sq[r0:r1], sq[c0:c1])
                rr, cc = _flat_pairs(d <= tau_r[:, None])
                rt, ct = _flat_pairs(d <= tau_c[None, :])
                dist = np.concatenate([d[rr, cc], d[rt, ct]])
                if rmax is not None:
                    np.maximum(rmax[r0:r1], d.max(axis=1), out=rmax[r0:r1])
                    np.maximum(rmax[c0:c1], d.max(axis=0), out=rmax[c0:c1])
                if r0 < keep_rows:
                    head[r0:min(r1, keep_rows), c0:c1] = d[:keep_rows - r0]
                if c0 < keep_rows:
                    head[c0:min(c1, keep_rows), r0:r1] = d[:, :keep_rows - c0].T
            _merge_keys(
                state,
                np.concatenate([rr + r0, ct + c0]),
                _keys(dist, np.concatenate([cc + c0, rt + r0])),
            )
    return Neighbors(
        (state & 0xFFFFFFFF).astype(np.int32), _key_distances(state).copy(), rmax, head
    )


def _pair_dots(feats: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    a, c = feats[rows], feats[cols]
    d = jnp.sum(a * a, axis=1) + jnp.sum(c * c, axis=1) - 2.0 * jnp.sum(a * c, axis=1)
    return jnp.maximum(d, 0.0)


_pair_dots_jit = jax.jit(_pair_dots)


def pair_sq_distances(
    features: ArrayLike, rows: np.ndarray, cols: np.ndarray, chunk_size: int = 16384
) -> np.ndarray:
    """Squared distances of a list of (row, col) pairs, computed on the device.

    Args:
      features: [n, d] features.
      rows: [p] first point of each pair.
      cols: [p] second point of each pair.
      chunk_size: pairs per device call.

    Returns:
      [p] float32 squared distances.
    """
    feats = jnp.asarray(features, jnp.float32)
    p = rows.shape[0]
    out = np.empty((p,), np.float32)
    chunk = max(1, min(chunk_size, p))
    for s in range(0, p, chunk):
        r, c = rows[s:s + chunk], cols[s:s + chunk]
        m = r.shape[0]
        if m < chunk:
            r, c = np.pad(r, (0, chunk - m)), np.pad(c, (0, chunk - m))
        out[s:s + m] = np.asarray(_pair_dots_jit(feats, jnp.asarray(r), jnp.asarray(c)))[:m]
    return out
