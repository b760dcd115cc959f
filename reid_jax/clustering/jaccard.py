"""k-reciprocal Jaccard distances for clustering, kept as a thresholded sparse graph.

The distance of the clustering pipelines (Zhong et al., "Re-ranking Person
Re-identification with k-reciprocal Encoding", CVPR 2017, as used by SpCL, Ge et al.,
NeurIPS 2020, ``compute_jaccard_distance``, cluster contrast and PPLR): L2-normalised
features, k1 = 30 neighbours searched (the image itself included), R(p, k1) from those
k1 entries, half sets from the first round(k1 / 2) + 1, the 2/3 expansion rule, weights
``softmax(-(2 - 2 cos))`` on R*, local query expansion over the first k2 = 6 neighbours,
``1 - m / (2 - m)`` with ``m = sum min(V_p, V_g)``, clipped at 0; no lambda mix.

The references build dense N x N matrices for V, its expansion and the distances.
Here the k-NN search runs in blocks (``evaluation/neighbors.py``: NumPy BLAS blocks
with threshold-filtered merges when JAX runs on the CPU, device blocks otherwise), the
encodings are sparse and the min-sums run over shared non-zeros only, for the pairs
i <= j, one block of rows at a time (the building blocks of
``evaluation/kreciprocal.py``, shared with re-ranking). What is kept differs from
``evaluation.rerank.k_reciprocal_jaccard``:
DBSCAN with radius eps only ever looks at pairs within eps, so ``max_distance``
keeps only those. That matters: on weakly structured features (early rounds, or the
random features of ``benchmarks/cluster_bench.py``) nearly every pair shares some
weight, and the full "overlapping pairs" graph is as large as the dense matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike

from reid_jax.evaluation import kreciprocal, neighbors

# SpCL / cluster contrast / PPLR: compute_jaccard_distance(features, k1=30, k2=6).
K1 = 30
K2 = 6
# Member pairs per chunk of gathered feature rows (2048 x 2048-d float32 = 16 MiB a
# side, within L3): one gather of all missing pairs was ~10x slower at Market size.
_PAIR_CHUNK = 2048


def member_distances(feats: np.ndarray, members: np.ndarray, nb: neighbors.Neighbors) -> np.ndarray:
    """Squared distances (2 - 2 cos for unit vectors) from each row to its R* members.

    Most members are in the row's own k-NN list, whose distances the search already
    returned; only members added by the expansion (neighbours of neighbours) are
    computed, as dot products on the host. Padding entries get 0.

    Args:
      feats: [N, D] L2-normalised features.
      members: [N, W] expanded sets padded with N.
      nb: the k-NN search result.

    Returns:
      [N, W] float32 distances.
    """
    n = feats.shape[0]
    out = np.zeros(members.shape, np.float32)
    block = max(1, (1 << 24) // max(1, members.shape[1] * nb.indices.shape[1]))
    for s in range(0, n, block):
        mem = members[s:s + block]
        hit = mem[:, :, None] == nb.indices[s:s + block, None, :]  # [b, W, k]
        found = hit.any(axis=-1)
        out[s:s + block] = np.where(found, (hit * nb.distances[s:s + block, None, :]).sum(-1), 0.0)
        r, c = np.nonzero(~found & (mem < n))
        for p in range(0, r.size, _PAIR_CHUNK):
            rp, cp = r[p:p + _PAIR_CHUNK], c[p:p + _PAIR_CHUNK]
            dots = np.einsum("ij,ij->i", feats[rp + s], feats[mem[rp, cp]])
            out[s + rp, cp] = np.maximum(2.0 - 2.0 * dots, 0.0)
    return out


def encodings(
    features: ArrayLike, k1: int = K1, k2: int = K2, chunk_size: int = 2048
) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """Query-expanded sparse k-reciprocal encodings of L2-normalised features.

    Args:
      features: [N, D] L2-normalised features.
      k1: neighbours searched per image (itself included).
      k2: local query expansion size.
      chunk_size: block size of the k-NN search.

    Returns:
      (V [N, N] float32 CSR with rows summing to 1, [N, >= k1] neighbour ranking).
    """
    feats = np.asarray(features, np.float32)
    n = feats.shape[0]
    half = kreciprocal.half_length(k1)
    nb = neighbors.knn_search(feats, max(k1, half, k2), chunk_size=chunk_size, row_max=False)
    members, counts = kreciprocal.expanded_sets(nb.indices, k1, half)
    dist = member_distances(feats, members, nb)
    v = kreciprocal.encode(members, counts, dist, n)
    return kreciprocal.query_expansion(v, nb.indices, k2), nb.indices


def min_sum_floor(max_distance: float) -> float:
    """A lower bound on the min-sum ``m`` of every pair with Jaccard distance <= max_distance.

    ``1 - m / (2 - m) <= eps`` iff ``m >= 2 (1 - eps) / (2 - eps)``; the bound sits 1e-5
    below (far more than float32 rounding of ``m`` and of the distance), and at most
    0.99 so that the diagonal (``m = 1``) always passes. The exact test on the float32
    distance follows.
    """
    if max_distance >= 1.0:
        return 0.0
    eps = float(max_distance)
    return min(2.0 * (1.0 - eps) / (2.0 - eps) - 1e-5, 0.99)


def normalize_rows(features: ArrayLike) -> np.ndarray:
    """L2-normalised float32 rows on the host (rows of zeros stay zero)."""
    feats = np.asarray(features, np.float32)
    norm = np.sqrt(np.einsum("ij,ij->i", feats, feats))
    return feats / np.maximum(norm, np.float32(1e-12))[:, None]


def jaccard_graph(
    features: ArrayLike,
    k1: int = K1,
    k2: int = K2,
    max_distance: float = 1.0,
    chunk_size: int = 2048,
) -> scipy.sparse.csr_matrix:
    """Sparse k-reciprocal Jaccard distances, only the pairs within ``max_distance``.

    The min-sums are symmetric: only the pairs i <= j are accumulated
    (``kreciprocal.upper_min_sums``, pairs below ``min_sum_floor(max_distance)``
    dropped while in cache) and the lower triangle is their mirror image, with the
    same bits as a row-by-row computation would give.

    Args:
      features: [N, D] features (L2-normalised here).
      k1: neighbours searched per image, itself included (30).
      k2: local query expansion size (6).
      max_distance: keep pairs with distance <= this (and encodings that overlap);
        pass DBSCAN's eps. 1.0 keeps every pair whose encodings share a non-zero.
      chunk_size: block size of the k-NN search.

    Returns:
      [N, N] float32 CSR. Every pair not stored has distance > max_distance (exactly 1
      when the encodings share nothing); the diagonal is stored (explicit 0).
    """
    feats = normalize_rows(features)
    n = feats.shape[0]
    if k1 < 1 or k2 < 1 or n < max(k1, k2):
        raise ValueError(f"need k1, k2 >= 1 and at least max(k1, k2) images; got {k1}, {k2}, {n}.")
    v, _ = encodings(feats, k1, k2, chunk_size)
    rows, cols, m = kreciprocal.upper_min_sums(v, min_sum_floor(max_distance))
    jac = np.maximum(kreciprocal.jaccard_from_min_sums(m), np.float32(0.0))
    keep = ((m > 0) & (jac <= max_distance)) | (rows == cols)
    rows, cols, jac = rows[keep], cols[keep], jac[keep]
    off = rows != cols
    return scipy.sparse.csr_matrix(
        (
            np.concatenate([jac, jac[off]]).astype(np.float32),
            (np.concatenate([rows, cols[off]]), np.concatenate([cols, rows[off]])),
        ),
        shape=(n, n),
    )
