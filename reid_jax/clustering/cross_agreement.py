"""PPLR: cross agreement between global and part neighbourhoods, and the refined losses.

Cho, Kim, Kim & Yoon, "Part-based Pseudo Label Refinement for Unsupervised Person
Re-identification", CVPR 2022 (official code: yoonkicho/PPLR). Facts followed, from
the official code (``examples/train_pplr.py``, ``pplr/loss/loss.py``):

* cross agreement, once per round, over *all* training images (outliers included):
  ``C_i(g, p_n) = |N_g(i) & N_pn(i)| / |N_g(i) | N_pn(i)|`` with ``N(i)`` the top-k
  (k = 20) neighbours of image i *excluding itself* (``compute_ranked_list`` searches
  k + 1 and drops the first column), in the L2-normalised global space and in the
  L2-normalised space of part n;
* AALS (agreement-aware label smoothing) for part n:
  ``C * CE(onehot, p) + (1 - C) * KL(u || p)`` with ``u`` uniform over the round's
  classes (``F.kl_div(log p, u)``), per sample, then the batch mean; for the first 5
  epochs (``--aals-epoch 5``) the parts use label-smoothed CE (eps 0.1) instead;
* PGLR (part-guided label refinement) for the global classifier: target
  ``beta * onehot + (1 - beta) * sum_n w_n softmax(part logits_n)`` with
  ``w = softmax_n(C)`` over the parts and the ensemble detached, beta = 0.5;
  loss ``-sum target * log softmax(global logits)``, batch mean.

Logits arrive already masked to the round's classes (``contrastive.masked_logits``),
the equivalent of the official ``logits[:, :num_class]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from reid_jax import vectors
from reid_jax.evaluation import neighbors
from reid_jax.losses import contrastive

# PPLR official defaults: --k 20, --beta 0.5, --aals-epoch 5.
TOP_K = 20
BETA = 0.5
AALS_EPOCH = 5


def ranked_lists(features: ArrayLike, k: int = TOP_K, chunk_size: int = 2048) -> np.ndarray:
    """The k nearest neighbours of each row among the others (itself excluded).

    Args:
      features: [N, D] features (L2-normalised here).
      k: list length.
      chunk_size: block size of the device k-NN search.

    Returns:
      [N, k] int32 indices, nearest first.
    """
    feats = np.asarray(vectors.l2_normalize(np.asarray(features, np.float32)))
    idx = neighbors.knn_search(feats, k + 1, chunk_size=chunk_size).indices
    # Drop each row's own index (normally first; with exact duplicates it may not be).
    n = idx.shape[0]
    is_self = idx == np.arange(n)[:, None]
    has_self = is_self.any(axis=1)
    drop = np.where(has_self, np.argmax(is_self, axis=1), idx.shape[1] - 1)
    keep = np.ones(idx.shape, bool)
    keep[np.arange(n), drop] = False
    return idx[keep].reshape(n, idx.shape[1] - 1)


def set_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard overlap |A & B| / |A | B| of two [N, k] index lists (unique rows)."""
    inter = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    union = a.shape[1] + b.shape[1] - inter
    return (inter / np.maximum(union, 1)).astype(np.float32)


def cross_agreement(
    global_features: ArrayLike, part_features: ArrayLike, k: int = TOP_K
) -> np.ndarray:
    """Cross-agreement scores of every image and part.

    Args:
      global_features: [N, D] global features.
      part_features: [N, P, D] part features.
      k: neighbour list length (20).

    Returns:
      [N, P] float32 scores in [0, 1].
    """
    parts = np.asarray(part_features, np.float32)
    g = ranked_lists(global_features, k)
    return np.stack(
        [set_overlap(g, ranked_lists(parts[:, n], k)) for n in range(parts.shape[1])], axis=1
    )


def aals(
    logits: jax.Array, labels: jax.Array, agreement: jax.Array, num_classes: jax.Array
) -> jax.Array:
    """Agreement-aware label smoothing loss of one part classifier.

    Args:
      logits: [B, C] part logits (columns >= num_classes are masked here).
      labels: [B] pseudo labels.
      agreement: [B] cross-agreement scores of this part.
      num_classes: number of the round's classes.

    Returns:
      Scalar ``mean(C * CE + (1 - C) * KL(u || p))``.
    """
    valid = contrastive.class_mask(logits.shape[-1], num_classes)
    logp = jax.nn.log_softmax(contrastive.masked_logits(logits.astype(jnp.float32), num_classes))
    ce = -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1)[:, 0]
    u = 1.0 / jnp.maximum(num_classes, 1).astype(jnp.float32)
    kl = jnp.sum(jnp.where(valid, u * (jnp.log(u) - logp), 0.0), axis=-1)
    return jnp.mean(agreement * ce + (1.0 - agreement) * kl)


def pglr_targets(
    part_logits: jax.Array,
    labels: jax.Array,
    agreement: jax.Array,
    num_classes: jax.Array,
    beta: float = BETA,
) -> jax.Array:
    """Refined targets of the global classifier (detached).

    Args:
      part_logits: [B, P, C] part logits.
      labels: [B] pseudo labels.
      agreement: [B, P] cross-agreement scores.
      num_classes: number of the round's classes.
      beta: weight of the one-hot pseudo label.

    Returns:
      [B, C] targets, rows summing to 1.
    """
    preds = jax.nn.softmax(contrastive.masked_logits(part_logits.astype(jnp.float32), num_classes))
    w = jax.nn.softmax(agreement.astype(jnp.float32), axis=1)  # over parts
    ensemble = jnp.sum(preds * w[:, :, None], axis=1)
    onehot = jax.nn.one_hot(labels, part_logits.shape[-1], dtype=jnp.float32)
    return jax.lax.stop_gradient(beta * onehot + (1.0 - beta) * ensemble)


def pglr(
    global_logits: jax.Array,
    part_logits: jax.Array,
    labels: jax.Array,
    agreement: jax.Array,
    num_classes: jax.Array,
    beta: float = BETA,
) -> jax.Array:
    """Part-guided label refinement loss of the global classifier.

    Args:
      global_logits: [B, C] global logits.
      part_logits: [B, P, C] part logits.
      labels: [B] pseudo labels.
      agreement: [B, P] cross-agreement scores.
      num_classes: number of the round's classes.
      beta: weight of the one-hot pseudo label (0.5).

    Returns:
      Scalar ``mean(-sum target * log softmax(global logits))``.
    """
    target = pglr_targets(part_logits, labels, agreement, num_classes, beta)
    logp = jax.nn.log_softmax(
        contrastive.masked_logits(global_logits.astype(jnp.float32), num_classes)
    )
    return -jnp.mean(jnp.sum(target * logp, axis=-1))
