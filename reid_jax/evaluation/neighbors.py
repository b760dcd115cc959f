"""Exact k-nearest-neighbour search on the accelerator, in bounded memory.

k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017) and the Jaccard distance of the clustering
pipelines (Ge et al., SpCL, NeurIPS 2020; Dai et al., cluster contrast, ACCV 2022) only
look at each image's first k1 + 1 neighbours, plus the largest distance of each row
(Zhong's code divides every row of the squared-distance matrix by its maximum). This
module computes exactly those from the features, one block of rows at a time, so the
N x N matrix (35 GB at MSMT17's 93,820 test images) is never built.

Distances are squared Euclidean, ``|x|^2 + |y|^2 - 2 x.y`` in float32 with full
matmul precision, clamped at 0 (cancellation can leave -1e-7 on the diagonal).
Ties are broken by the lower index (``jax.lax.top_k`` keeps the first of equal
values), which is the order a stable argsort gives.
"""

from __future__ import annotations

import typing

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

_PRECISION = jax.lax.Precision.HIGHEST


class Neighbors(typing.NamedTuple):
    """k nearest neighbours of every row (the row itself included, usually first).

    Attributes:
      indices: [n, k] int32 neighbour indices, nearest first.
      distances: [n, k] float32 squared Euclidean distances to them.
      row_max: [n] float32 largest squared distance of each row over all n points.
      head: [keep_rows, n] float32 full distance rows of the first ``keep_rows``
        points when asked for (re-ranking reuses the query rows), else None.
    """

    indices: np.ndarray
    distances: np.ndarray
    row_max: np.ndarray
    head: np.ndarray | None = None


def sq_euclidean(
    a: jax.Array,
    b: jax.Array,
    a_sqnorm: jax.Array | None = None,
    b_sqnorm: jax.Array | None = None,
) -> jax.Array:
    """Squared Euclidean distances between the rows of ``a`` and ``b``.

    Args:
      a: [m, d] float32.
      b: [n, d] float32.
      a_sqnorm: optional precomputed [m] squared norms of ``a``.
      b_sqnorm: optional precomputed [n] squared norms of ``b``.

    Returns:
      [m, n] float32 distances, clamped at 0.
    """
    if a_sqnorm is None:
        a_sqnorm = jnp.sum(a * a, axis=1)
    if b_sqnorm is None:
        b_sqnorm = jnp.sum(b * b, axis=1)
    # (-2 a) . b equals -2 (a . b) bit for bit (scaling by a power of two is exact),
    # and lets XLA fuse the additions into the matmul's output.
    dots = jnp.matmul(a * -2.0, b.T, precision=_PRECISION)
    return jnp.maximum(a_sqnorm[:, None] + b_sqnorm[None, :] + dots, 0.0)


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
    d = sq_euclidean(
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
    features: ArrayLike, k: int, chunk_size: int = 1024, keep_rows: int = 0
) -> Neighbors:
    """The k nearest neighbours of every row among all rows (itself included).

    The distance matrix is symmetric, so only the blocks (I, J) with I <= J are
    computed; each serves the top-k of row block I and, transposed, of row block J.
    Column blocks reach every row block in increasing order, which keeps the
    lower-index tie rule of a stable sort.

    Args:
      features: [n, d] features.
      k: neighbours per row (clipped to n).
      chunk_size: block size; the device holds a few ``chunk_size x chunk_size``
        distance blocks at a time. 1024 was fastest on a 2-core CPU at Market size
        (14 CPU-s against 18 for 2048 and 16 for 512).
      keep_rows: also return the full distance rows of the first ``keep_rows``
        points (``Neighbors.head``, keep_rows x n floats on the host).

    Returns:
      ``Neighbors`` with host arrays.
    """
    feats = jnp.asarray(features, jnp.float32)
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
