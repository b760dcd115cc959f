"""k-reciprocal re-ranking and k-reciprocal Jaccard distances.

Zhong, Zheng, Cao & Li, "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017 (official code: github.com/zhunzhong07/person-re-ranking, the
feature version ``re_ranking(probFea, galFea, k1, k2, lambda_value)``). Followed here,
from that code:

* original distance: squared Euclidean over query + gallery features, each row
  divided by its maximum (the code divides each column of the symmetric matrix by
  its maximum and transposes);
* ``R(p, k1)`` from the first ``k1 + 1`` ranking entries (the point itself
  included), half sets from the first ``round(k1 / 2) + 1``, 2/3 expansion rule,
  weights ``exp(-d)`` normalised on ``R*``, local query expansion over the first
  ``k2`` entries, Jaccard ``1 - m / (2 - m)`` of query rows against gallery rows;
* final distance ``(1 - lambda) * Jaccard + lambda * original`` restricted to
  query x gallery; defaults k1 = 20, k2 = 6, lambda = 0.3 (paper, Sec. 4.2).

Departures: the official code stores V and the Jaccard matrix in float16; here they
are float32 (float64 accumulation), so its output differs from ours by ~1e-3. Ties in
the ranking are broken by the lower index (stable sort), the official code's
quicksort leaves them unspecified. The distance-matrix variant that torchreid and
many repositories copy (``re_ranking(q_g_dist, q_q_dist, g_g_dist)``) squares the
distances it is given; fed torchreid's squared Euclidean distances it works on their
square, which changes the weights exp(-d) (not the neighbour sets). Here the original
distance is always the squared Euclidean distance of the features, as in the feature
version.

Two implementations share the neighbour-set code (``kreciprocal.py``):

* ``k_reciprocal_rerank_dense``: dense N x N matrices, a direct vectorisation of the
  algorithm, for small problems and as a cross-check (O(N^2) memory, O(q g N) time);
* ``k_reciprocal_rerank`` / ``iter_k_reciprocal_rerank``: k-NN search on the device
  in row blocks (``neighbors.py``), sparse encodings, Jaccard over shared non-zeros
  only, the final matrix produced one query block at a time. Memory is
  O(N d + N (k1 + k2 |R*|)) plus one ``chunk_size x g`` block, plus (by default,
  ``cache_bytes``) the q x N query rows of the k-NN pass so the final mix needs no
  second matmul. At MSMT17 size (93,820 images) that measured 8.3 GiB peak with
  64-d features (4.4 GB of it the cached rows) where the dense code needs > 35 GB
  per N x N matrix.

``k_reciprocal_jaccard`` is the pure Jaccard distance of the unsupervised clustering
pipelines (Ge et al., SpCL, NeurIPS 2020, ``compute_jaccard_distance``; Dai et al.,
cluster contrast, ``faiss_rerank.py``): L2-normalised features, ``k1`` neighbours
searched (k1 = 30, k2 = 6), softmax of ``-(2 - 2 cos)`` on R*, no row scaling, no
lambda mix, clipped at 0.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike

from reid_jax import vectors
from reid_jax.evaluation import distance, kreciprocal, neighbors

# Zhong et al. 2017, Sec. 4.2 (Market-1501 setting, also the official code's defaults).
K1 = 20
K2 = 6
LAMBDA = 0.3
# Cluster contrast / SpCL clustering defaults (compute_jaccard_distance(k1=30, k2=6)).
CLUSTER_K1 = 30
CLUSTER_K2 = 6


def _stack(query_features: ArrayLike, gallery_features: ArrayLike) -> tuple[np.ndarray, int]:
    q = np.asarray(query_features, np.float32)
    g = np.asarray(gallery_features, np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f'Expected [q, d] and [g, d] features, got {q.shape} and {g.shape}.')
    return np.concatenate([q, g], axis=0), q.shape[0]


def _check_k(k1: int, k2: int, n: int) -> None:
    if k1 < 1 or k2 < 1:
        raise ValueError(f'k1 and k2 must be >= 1, got {k1}, {k2}.')
    if max(k1 + 1, k2) > n:
        raise ValueError(f'Need at least max(k1 + 1, k2) = {max(k1 + 1, k2)} images, got {n}.')


def _min_sums_dense(vq: jax.Array, vg: jax.Array) -> jax.Array:
    return jnp.sum(jnp.minimum(vq[:, None, :], vg[None, :, :]), axis=-1)


_min_sums_dense_jit = jax.jit(_min_sums_dense)


def k_reciprocal_rerank_dense(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    k1: int = K1,
    k2: int = K2,
    lambda_value: float = LAMBDA,
) -> np.ndarray:
    """Re-ranked query x gallery distances with dense N x N intermediates.

    Args:
      query_features: [q, d] features.
      gallery_features: [g, d] features.
      k1: k-reciprocal neighbourhood size.
      k2: local query expansion size.
      lambda_value: weight of the original distance in the final mix.

    Returns:
      [q, g] float32 re-ranked distances.
    """
    feats, nq = _stack(query_features, gallery_features)
    f = jnp.asarray(feats)
    dist = np.asarray(vectors.sq_euclidean(f, f)).astype(np.float32)
    return rerank_distances(dist, nq, k1, k2, lambda_value)


def rerank_distances(
    distances: ArrayLike, num_query: int, k1: int = K1, k2: int = K2,
    lambda_value: float = LAMBDA,
) -> np.ndarray:
    """Re-ranked query x gallery distances from the (q + g) x (q + g) original distances.

    The dense algorithm of ``k_reciprocal_rerank_dense`` on given distances (a pair
    network's scores, ``reid_jax/evaluation/pairs.py``): each column is scaled by its
    maximum, as the official code does with squared Euclidean distances.

    Args:
      distances: [n, n] non-negative distances, query rows and columns first; need not
        be symmetric (row i holds picture i's distances to every picture).
      num_query: q.
      k1, k2, lambda_value: as ``k_reciprocal_rerank_dense``.

    Returns:
      [q, n - q] float32 re-ranked distances.
    """
    dist = np.asarray(distances, np.float32)
    n, nq = dist.shape[0], num_query
    if dist.shape != (n, n) or not 0 < nq < n:
        raise ValueError(f'Expected an [n, n] matrix with 0 < num_query < n, got {dist.shape} '
                         f'and {nq}.')
    _check_k(k1, k2, n)
    original = (dist / np.maximum(dist.max(axis=0), 1e-12)).T  # as the official code writes it
    ranking = np.argsort(original, axis=1, kind='stable')
    members, counts = kreciprocal.expanded_sets(ranking, k1 + 1, kreciprocal.half_length(k1))
    rows = np.arange(n)[:, None]
    member_dist = original[rows, np.minimum(members, n - 1)]
    v = kreciprocal.encode(members, counts, member_dist, n).toarray()
    if k2 > 1:
        v = v[ranking[:, :k2]].mean(axis=1)
    vq, vg = jnp.asarray(v[:nq]), jnp.asarray(v[nq:])
    block = max(1, (1 << 26) // max(1, vg.shape[0] * n))
    m = np.concatenate(
        [np.asarray(_min_sums_dense_jit(vq[s:s + block], vg)) for s in range(0, nq, block)]
    ).astype(np.float64)
    jaccard = kreciprocal.jaccard_from_min_sums(m)
    final = (1.0 - lambda_value) * jaccard + lambda_value * original[:nq, nq:]
    return final.astype(np.float32)


def _member_distances(feats: np.ndarray, members: np.ndarray, nb: neighbors.Neighbors) -> np.ndarray:
    """Squared distances from each row to its R* members (padding gets 0).

    Members inside the row's k-NN list reuse the distance found by the search; the
    rest (neighbours of neighbours added by the expansion) are computed pairwise.
    """
    n, width = members.shape
    out = np.zeros(members.shape, np.float32)
    for s in range(0, n, 4096):
        mem = members[s:s + 4096]
        hit = mem[:, :, None] == nb.indices[s:s + 4096, None, :]
        found = hit.any(axis=-1)
        out[s:s + 4096] = np.where(found, (hit * nb.distances[s:s + 4096, None, :]).sum(-1), 0.0)
        missing = ~found & (mem < n)
        r, c = np.nonzero(missing)
        if r.size:
            out[s:s + 4096][r, c] = neighbors.pair_sq_distances(feats, r + s, mem[r, c])
    return out


def _encoding(
    feats: np.ndarray, length: int, k1: int, k2: int, scale_rows: bool, knn_chunk: int,
    keep_rows: int = 0,
) -> tuple[scipy.sparse.csr_matrix, neighbors.Neighbors]:
    """Sparse (query-expanded) k-reciprocal encodings of all rows of ``feats``."""
    n = feats.shape[0]
    half = kreciprocal.half_length(k1)
    nb = neighbors.knn_search(feats, max(length, half, k2), chunk_size=knn_chunk, keep_rows=keep_rows)
    members, counts = kreciprocal.expanded_sets(nb.indices, length, half)
    member_dist = _member_distances(feats, members, nb)
    if scale_rows:
        member_dist = member_dist / np.maximum(nb.row_max, np.finfo(np.float32).tiny)[:, None]
    v = kreciprocal.encode(members, counts, member_dist, n)
    return kreciprocal.query_expansion(v, nb.indices, k2), nb


def iter_k_reciprocal_rerank(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    k1: int = K1,
    k2: int = K2,
    lambda_value: float = LAMBDA,
    chunk_size: int = 1024,
    knn_chunk_size: int = 1024,
    cache_bytes: int = 6 << 30,
) -> Iterator[tuple[int, np.ndarray]]:
    """Re-ranked distances one block of queries at a time, in bounded memory.

    Args:
      query_features: [q, d] features.
      gallery_features: [g, d] features.
      k1: k-reciprocal neighbourhood size.
      k2: local query expansion size.
      lambda_value: weight of the original distance in the final mix.
      chunk_size: queries per yielded block.
      knn_chunk_size: block size of the k-NN search over the q + g images.
      cache_bytes: if the q x (q + g) float32 query rows fit in this many bytes, the
        k-NN pass keeps them on the host for the final mix instead of recomputing the
        q x g distances (Market: 0.26 GB, MSMT17: 4.4 GB). 0 always recomputes,
        bounding host memory by the sparse encodings plus one query block.

    Yields:
      ``(start, block)`` with ``block`` the float32 [rows, g] re-ranked distances of
      queries ``start:start + rows``.
    """
    feats, nq = _stack(query_features, gallery_features)
    n = feats.shape[0]
    _check_k(k1, k2, n)
    # The k-NN pass computes every query row anyway; keep them when they are small.
    keep = nq if nq * n * 4 <= cache_bytes else 0
    v, nb = _encoding(feats, k1 + 1, k1, k2, scale_rows=True, knn_chunk=knn_chunk_size, keep_rows=keep)
    inverted = v[nq:].T.tocsr()  # row k: gallery images with weight on k
    scale = np.float32(1.0) / np.maximum(nb.row_max[:nq], np.finfo(np.float32).tiny)
    if nb.head is not None:
        blocks = ((s, nb.head[s:s + chunk_size, nq:]) for s in range(0, nq, chunk_size))
    else:
        blocks = distance.iter_distance_chunks(feats[:nq], feats[nq:], 'sqeuclidean', chunk_size)
    for start, block in blocks:
        rows = block.shape[0]
        m = kreciprocal.min_sums(v[start:start + rows], inverted)
        # float32 throughout: the values are in [0, 1] and this block is the largest
        # host allocation at MSMT17 size (chunk_size x 82,161).
        final = kreciprocal.jaccard_from_min_sums(m)
        final *= np.float32(1.0 - lambda_value)
        final += np.asarray(block) * (scale[start:start + rows, None] * np.float32(lambda_value))
        yield start, final


def k_reciprocal_rerank(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    k1: int = K1,
    k2: int = K2,
    lambda_value: float = LAMBDA,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Re-ranked query x gallery distances, memory-bounded (see ``iter_k_reciprocal_rerank``).

    Args:
      query_features: [q, d] features.
      gallery_features: [g, d] features.
      k1: k-reciprocal neighbourhood size (20 in the paper).
      k2: local query expansion size (6).
      lambda_value: weight of the original distance (0.3).
      chunk_size: queries per block.

    Returns:
      [q, g] float32 re-ranked distances.
    """
    nq = np.shape(query_features)[0]
    ng = np.shape(gallery_features)[0]
    out = np.empty((nq, ng), np.float32)
    for start, block in iter_k_reciprocal_rerank(
        query_features, gallery_features, k1, k2, lambda_value, chunk_size
    ):
        out[start:start + block.shape[0]] = block
    return out


def k_reciprocal_jaccard(
    features: ArrayLike,
    k1: int = CLUSTER_K1,
    k2: int = CLUSTER_K2,
    output: str = 'sparse',
    normalize: bool = True,
    chunk_size: int = 1024,
) -> scipy.sparse.csr_matrix | np.ndarray:
    """Pure k-reciprocal Jaccard distances among all rows (clustering pipelines).

    Args:
      features: [n, d] features.
      k1: neighbours searched per image (the list includes the image itself).
      k2: local query expansion size.
      output: 'sparse' for a CSR matrix holding every pair whose encodings overlap
        (every pair not stored has distance exactly 1, so a DBSCAN with eps < 1 on
        the sparse precomputed graph sees the same neighbourhoods; the diagonal is
        stored, as an explicit 0), or 'dense' for an [n, n] array.
      normalize: L2-normalise the features first, as the references do.
      chunk_size: rows per block of the Jaccard computation and k-NN search.

    Returns:
      [n, n] float32 Jaccard distances in [0, 1], as CSR or dense.
    """
    if output not in ('sparse', 'dense'):
        raise ValueError(f"output must be 'sparse' or 'dense', got {output!r}.")
    feats = np.asarray(features, np.float32)
    if normalize:
        feats = np.asarray(vectors.l2_normalize(feats))
    n = feats.shape[0]
    _check_k(max(k1 - 1, 1), k2, n)
    v, _ = _encoding(feats, k1, k1, k2, scale_rows=False, knn_chunk=chunk_size)
    inverted = v.T.tocsr()
    dense = np.empty((n, n), np.float32) if output == 'dense' else None
    parts = []
    for s in range(0, n, chunk_size):
        m = kreciprocal.min_sums(v[s:s + chunk_size], inverted)
        jac = np.maximum(kreciprocal.jaccard_from_min_sums(m), 0.0).astype(np.float32)
        if dense is not None:
            dense[s:s + jac.shape[0]] = jac
        else:
            r, c = np.nonzero(m > 0)
            parts.append(scipy.sparse.csr_matrix((jac[r, c], (r, c)), shape=jac.shape))
    if dense is not None:
        return dense
    return scipy.sparse.vstack(parts, format='csr')
