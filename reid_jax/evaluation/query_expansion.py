"""Alpha-weighted average query expansion (alpha-QE).

Radenovic, Tolias & Chum, "Fine-tuning CNN Image Retrieval with No Human Annotation",
TPAMI 2018, Sec. 5.1: each L2-normalised descriptor is replaced by the normalised sum
of its k nearest descriptors (itself included), weighted by their cosine similarity
raised to the power alpha. Average query expansion (alpha = 0) goes back to Chum et
al., "Total Recall", ICCV 2007.

As in fast-reid's ``aqe`` (defaults ``qe_times=1, qe_k=10, alpha=3.0``), the expansion
is applied to query and gallery descriptors alike, with neighbours searched over
both. Negative similarities get weight 0 (a non-integer power of a negative number
is undefined; fast-reid would produce NaN there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from reid_jax import vectors
from reid_jax.evaluation import neighbors

QE_K = 10
QE_ALPHA = 3.0


@jax.jit
def _expand(feats: jax.Array, idx: jax.Array, sims: jax.Array, alpha: jax.Array) -> jax.Array:
    weights = jnp.maximum(sims, 0.0) ** alpha
    return jnp.einsum('nk,nkd->nd', weights, feats[idx])


def alpha_query_expansion(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    k: int = QE_K,
    alpha: float = QE_ALPHA,
    times: int = 1,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Expanded, L2-normalised query and gallery descriptors.

    Args:
      query_features: [q, d] features.
      gallery_features: [g, d] features.
      k: descriptors averaged per image (itself included).
      alpha: similarity exponent; 0 gives plain average query expansion.
      times: rounds of expansion.
      chunk_size: block size of the neighbour search and of the weighted sums.

    Returns:
      ``(query, gallery)`` float32 arrays of shapes [q, d] and [g, d].
    """
    nq = np.shape(query_features)[0]
    feats = np.asarray(
        vectors.l2_normalize(np.concatenate([np.asarray(query_features), np.asarray(gallery_features)]))
    )
    for _ in range(times):
        nb = neighbors.knn_search(feats, k, chunk_size=chunk_size)
        sims = 1.0 - nb.distances / 2.0  # |a - b|^2 = 2 - 2 cos for unit vectors
        f = jnp.asarray(feats)
        out = np.empty_like(feats)
        for s in range(0, feats.shape[0], chunk_size):
            out[s:s + chunk_size] = np.asarray(
                _expand(f, jnp.asarray(nb.indices[s:s + chunk_size]),
                        jnp.asarray(sims[s:s + chunk_size]), jnp.float32(alpha))
            )
        feats = np.asarray(vectors.l2_normalize(out))
    return feats[:nq], feats[nq:]
