"""Query-gallery distance matrices, computed on the accelerator in query chunks.

Two metrics are offered, the ones re-ID papers report with:

* ``'euclidean'``: the true Euclidean distance ``||q - g||_2``. torchreid's
  ``compute_distance_matrix(metric='euclidean')`` returns the *squared* distance;
  the ranking, and therefore every CMC/mAP/mINP figure, is identical, only the
  values printed differ.
* ``'cosine'``: ``1 - cos(q, g)`` on L2-normalised features (torchreid, fast-reid).

The matrix is built with ``|q|^2 + |g|^2 - 2 q.g`` in float32, one jitted query chunk
at a time, so the device never holds more than ``chunk_size x g`` distances (plus the
gallery features). The last chunk is padded to ``chunk_size`` rows so a whole call
compiles once.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from reid_jax import vectors

METRICS = ('euclidean', 'sqeuclidean', 'cosine')

# Evaluation must not depend on TF32 or bf16 passes that accelerators use by default
# for float32 matmuls: ask XLA for full float32 products.
_PRECISION = jax.lax.Precision.HIGHEST


def _distance_block(q: jax.Array, g: jax.Array, g_sqnorm: jax.Array, metric: str) -> jax.Array:
    """Distances between a query block and the whole gallery (traced inside jit)."""
    if metric == 'cosine':
        return 1.0 - jnp.matmul(q, g.T, precision=_PRECISION)
    sq = vectors.sq_euclidean(q, g, b_sqnorm=g_sqnorm, precision=_PRECISION)
    if metric == 'sqeuclidean':
        return sq
    return jnp.sqrt(sq)


_distance_block_jit = jax.jit(_distance_block, static_argnames=('metric',))


def _prepare(query: ArrayLike, gallery: ArrayLike, metric: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Validates inputs and moves them to the device (normalised for cosine)."""
    if metric not in METRICS:
        raise ValueError(f'Unknown metric {metric!r}; expected one of {METRICS}.')
    q = jnp.asarray(query, jnp.float32)
    g = jnp.asarray(gallery, jnp.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f'Expected [q, d] and [g, d] features, got {q.shape} and {g.shape}.')
    if metric == 'cosine':
        q, g = vectors.l2_normalize(q), vectors.l2_normalize(g)
    return q, g, jnp.sum(g * g, axis=1)


def iter_distance_chunks(
    query: ArrayLike,
    gallery: ArrayLike,
    metric: str = 'euclidean',
    chunk_size: int = 4096,
) -> Iterator[tuple[int, jax.Array]]:
    """Yields ``(start, block)`` with ``block`` the on-device distances of a query chunk.

    Used by the chunked protocol so a block can be ranked on the device before any
    of it comes to the host.

    Args:
      query: [q, d] query features.
      gallery: [g, d] gallery features.
      metric: 'euclidean', 'sqeuclidean' or 'cosine'.
      chunk_size: query rows per block.

    Yields:
      ``(start, block)``: ``block`` is a float32 device array of shape
      [min(chunk_size, q - start), g] holding rows ``start:start + len(block)``.
    """
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be positive, got {chunk_size}.')
    q, g, g_sqnorm = _prepare(query, gallery, metric)
    n = q.shape[0]
    chunk = min(chunk_size, max(n, 1))
    for start in range(0, n, chunk):
        block = q[start:start + chunk]
        rows = block.shape[0]
        if rows < chunk:  # pad so every call reuses one compiled shape
            block = jnp.pad(block, ((0, chunk - rows), (0, 0)))
        out = _distance_block_jit(block, g, g_sqnorm, metric)
        yield start, out[:rows]


def pairwise_distances(
    query: ArrayLike,
    gallery: ArrayLike,
    metric: str = 'euclidean',
    chunk_size: int = 4096,
) -> np.ndarray:
    """Full query x gallery distance matrix on the host.

    Args:
      query: [q, d] query features.
      gallery: [g, d] gallery features.
      metric: 'euclidean' (true, not squared, Euclidean distance), 'sqeuclidean'
        or 'cosine' (1 - cosine similarity of L2-normalised features).
      chunk_size: query rows computed per device call; the device holds at most
        ``chunk_size x g`` distances at once.

    Returns:
      float32 NumPy array of shape [q, g].
    """
    return collect_blocks(iter_distance_chunks(query, gallery, metric, chunk_size),
                          np.shape(query)[0], np.shape(gallery)[0])


def collect_blocks(blocks: Iterator[tuple[int, ArrayLike]], num_query: int,
                   num_gallery: int) -> np.ndarray:
    """The [q, g] float32 host matrix of ``(start, rows)`` query blocks (any source of
    distances: features, a pair network's scores)."""
    out = np.empty((num_query, num_gallery), np.float32)
    for start, block in blocks:
        out[start:start + block.shape[0]] = np.asarray(block)
    return out
