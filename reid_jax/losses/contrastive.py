"""Losses of the clustering-based unsupervised methods.

- ``cluster_nce``: the ClusterNCE / InfoNCE loss of cluster contrast (Dai et al.,
  "Cluster Contrast for Unsupervised Person Re-Identification", ACCV 2022): cross-entropy
  over ``f . M^T / tau`` with L2-normalised features ``f`` and the cluster memory ``M``,
  tau = 0.05 (official ``--temp 0.05``). The memory gets no gradient (``CM.backward``
  returns ``grad_outputs.mm(features)`` for the inputs only).
- ``masked_cross_entropy``: (label-smoothed) cross-entropy over the first
  ``num_classes`` logits only; classifiers sized for a maximum number of clusters are
  sliced to the round's clusters in PPLR (``logits[:, :num_class]``) and in
  ``CrossEntropyLabelSmooth(num_classes=num_class)``, epsilon 0.1.
- ``soft_triplet``: batch-hard soft-margin triplet on Euclidean distances, the
  ``SoftTripletLoss(margin=0)`` of MMT (Ge et al., "Mutual Mean-Teaching: Pseudo Label
  Refinery for Unsupervised Domain Adaptation on Person Re-identification", ICLR 2020)
  used by PPLR and MMT: ``-log softmax([d_ap, d_an])[1] = softplus(d_ap - d_an)``.
- ``soft_triplet_distill``: MMT's ``SoftTripletLoss(margin=None)(emb, emb_teacher)``:
  the student's hardest positive / negative, and as target the teacher's softmax over
  its distances to the same two samples (detached).
- ``soft_entropy``: MMT's ``SoftEntropy``: cross-entropy against the teacher's softmax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reid_jax import vectors
from reid_jax.losses import metric

# Cluster contrast official --temp default (also the paper, Sec. 4.2).
TEMPERATURE = 0.05
# A finite "minus infinity" for masked logits: exp() underflows to 0 and no NaN appears
# in either branch of the masking where.
NEG_INF = -1e9


def class_mask(capacity: int, num_classes: jax.Array) -> jax.Array:
    """[capacity] bool: True for the classes 0..num_classes-1 of the current round."""
    return jnp.arange(capacity) < num_classes


def masked_logits(logits: jax.Array, num_classes: jax.Array) -> jax.Array:
    """Logits of classes >= num_classes set to a large negative number (last axis)."""
    valid = class_mask(logits.shape[-1], num_classes)
    return jnp.where(valid, logits, NEG_INF)


def memory_logits(
    features: jax.Array, memory: jax.Array, num_classes: jax.Array, temperature: float = TEMPERATURE
) -> jax.Array:
    """``normalize(f) . M^T / tau``, masked beyond ``num_classes``; no gradient to M.

    Args:
      features: [B, D] features (normalised here).
      memory: [C, D] proxies (rows >= num_classes are padding).
      num_classes: number of valid rows.
      temperature: tau.

    Returns:
      [B, C] float32 logits.
    """
    f = vectors.l2_normalize(features.astype(jnp.float32))
    m = jax.lax.stop_gradient(memory.astype(jnp.float32))
    logits = jnp.matmul(f, m.T, precision=jax.lax.Precision.HIGHEST) / temperature
    return masked_logits(logits, num_classes)


def cluster_nce(
    features: jax.Array,
    memory: jax.Array,
    labels: jax.Array,
    num_classes: jax.Array,
    temperature: float = TEMPERATURE,
) -> jax.Array:
    """ClusterNCE: mean cross-entropy of each sample against all cluster proxies.

    Args:
      features: [B, D] features (normalised here).
      memory: [C, D] proxies.
      labels: [B] pseudo labels in 0..num_classes-1.
      num_classes: number of valid memory rows.
      temperature: tau (0.05).

    Returns:
      Scalar loss.
    """
    logits = memory_logits(features, memory, num_classes, temperature)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1))


def masked_cross_entropy(
    logits: jax.Array, labels: jax.Array, num_classes: jax.Array, label_smoothing: float = 0.0
) -> jax.Array:
    """Cross-entropy over the first ``num_classes`` logits, optionally label-smoothed.

    The smoothed target is ``(1 - eps) * onehot + eps / num_classes`` on the valid
    classes (PPLR's ``CrossEntropyLabelSmooth``).

    Args:
      logits: [B, C] logits (columns >= num_classes are ignored).
      labels: [B] int labels.
      num_classes: number of valid classes.
      label_smoothing: eps.

    Returns:
      Scalar mean loss.
    """
    valid = class_mask(logits.shape[-1], num_classes)
    logp = jax.nn.log_softmax(masked_logits(logits.astype(jnp.float32), num_classes), axis=-1)
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
    uniform = valid.astype(jnp.float32) / jnp.maximum(num_classes, 1)
    target = (1.0 - label_smoothing) * onehot + label_smoothing * uniform[None, :]
    return -jnp.mean(jnp.sum(jnp.where(valid, target * logp, 0.0), axis=-1))


def soft_triplet(features: jax.Array, labels: jax.Array) -> jax.Array:
    """Batch-hard soft-margin triplet loss (MMT/PPLR ``SoftTripletLoss(margin=0)``).

    Euclidean distances ``sqrt(max(d^2, 1e-12))`` as the references; the mean over the
    anchors that have a positive and a negative (every anchor under P x K sampling).

    Args:
      features: [B, D] embeddings (not normalised, as PPLR's BNNeck output).
      labels: [B] int labels.

    Returns:
      Scalar loss.
    """
    return metric.batch_hard_triplet(features, labels, soft_margin=True)


def _hard_indices(dist: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Indices of each anchor's farthest positive and nearest negative."""
    same = labels[:, None] == labels[None, :]
    n = labels.shape[0]
    pos = same & ~jnp.eye(n, dtype=bool)
    # An anchor without another positive falls back on itself, as the reference's mask
    # (which includes the diagonal) does.
    pos = pos | (~jnp.any(pos, axis=1, keepdims=True) & jnp.eye(n, dtype=bool))
    ap = jnp.argmax(jnp.where(pos, dist, -jnp.inf), axis=1)
    an = jnp.argmin(jnp.where(same, jnp.inf, dist), axis=1)
    return ap, an


def soft_triplet_distill(
    features: jax.Array, teacher_features: jax.Array, labels: jax.Array
) -> jax.Array:
    """MMT soft triplet: student log-softmax over (d_ap, d_an) vs the teacher's softmax.

    Args:
      features: [B, D] student embeddings.
      teacher_features: [B, D] teacher embeddings of the same images (no gradient).
      labels: [B] pseudo labels.

    Returns:
      Scalar ``mean_i sum -softmax(t_ap, t_an) * log_softmax(d_ap, d_an)``.
    """
    d = vectors.euclidean(features, features)
    ap, an = _hard_indices(jax.lax.stop_gradient(d), labels)
    rows = jnp.arange(labels.shape[0])
    student = jnp.stack([d[rows, ap], d[rows, an]], axis=1)
    t = jax.lax.stop_gradient(vectors.euclidean(teacher_features, teacher_features))
    target = jax.nn.softmax(jnp.stack([t[rows, ap], t[rows, an]], axis=1), axis=1)
    return jnp.mean(jnp.sum(-target * jax.nn.log_softmax(student, axis=1), axis=1))


def soft_entropy(logits: jax.Array, teacher_logits: jax.Array) -> jax.Array:
    """MMT ``SoftEntropy``: ``mean_i sum_c -softmax(teacher)_c * log_softmax(student)_c``."""
    target = jax.nn.softmax(jax.lax.stop_gradient(teacher_logits.astype(jnp.float32)), axis=-1)
    return jnp.mean(jnp.sum(-target * jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), -1))
