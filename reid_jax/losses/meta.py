"""Losses of the meta-learning domain-generalization methods.

- Inter-domain soft-margin triplet (MetaBIN meta-train; Choi et al., "Meta Batch-Instance
  Normalization for Generalizable Person Re-Identification", CVPR 2021): for an anchor,
  the positives are its own identity *and every sample of another domain*, the negatives
  the other identities of its own domain; hardest of each, soft margin. This is the
  official code's `triplet_loss` with `NEW_POS = [1, 0, 1]`, `NEW_NEG = [0, 1, 0]`
  (bismex/MetaBIN `fastreid/modeling/losses/triplet_loss.py`: the three sets are
  same identity / same domain other identity / other domain): other domains must come
  closer than the anchor's own domain's other people, which penalises domain clusters.
- SCT, the intra-domain scatter loss (MetaBIN): per domain, the mean cosine similarity of
  its features to the domain centre; minimised, it spreads each domain's features
  (official `domain_SCT_loss` with type 'cosine_sim'; features L2-normalised, centre =
  mean of the normalised features).
- Memory identification loss (M3L; Zhao et al., "Learning to Generalize Unseen Domains
  via Memory-based Multi-Source Meta-Learning for Person Re-Identification", CVPR 2021,
  eq. 1): softmax over the similarities of a normalised feature to the class centroids
  of its own domain's memory, temperature 0.05 (official HeliosZhao/M3L
  `reid/models/memory.py`: `temp=0.05`). The memory receives no gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reid_jax import vectors

MEMORY_TEMPERATURE = 0.05
_MASKED_LOGIT = -1e9


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def inter_domain_triplet(features: jax.Array, labels: jax.Array, domains: jax.Array) -> jax.Array:
    """MetaBIN's inter-domain soft-margin triplet (batch-hard mining).

    Official ``TripletLoss_add`` (bismex/MetaBIN configs/Base-DG.yml ``MODEL.LOSSES.TRI_ADD``:
    ``NEW_POS [0, 0, 1]``, ``NEW_NEG [0, 1, 0]``, margin 0 = soft margin): the positives of
    an anchor are the pictures of the *other* domains (the farthest is pulled in), its
    negatives the other identities of its own domain (the nearest is pushed out).

    Args:
      features: [N, D] embeddings.
      labels: [N] identities (disjoint across domains).
      domains: [N] domain ids.

    Returns:
      Scalar mean of softplus(d_pos - d_neg) over anchors with at least one positive
      and one negative.
    """
    dist = vectors.euclidean(features, features)
    n = labels.shape[0]
    not_self = ~jnp.eye(n, dtype=bool)
    same_id = labels[:, None] == labels[None, :]
    same_dom = domains[:, None] == domains[None, :]
    pos = not_self & ~same_dom  # NEW_POS [0, 0, 1]: the other domains' pictures only
    neg = ~same_id & same_dom
    d_pos = jnp.max(jnp.where(pos, dist, 0.0), axis=1)
    big = jax.lax.stop_gradient(jnp.max(dist)) + 1.0
    d_neg = jnp.min(jnp.where(neg, dist, big), axis=1)
    valid = jnp.any(pos, axis=1) & jnp.any(neg, axis=1)
    return _masked_mean(jax.nn.softplus(d_pos - d_neg), valid)


def scatter_loss(features: jax.Array, domains: jax.Array, num_domains: int) -> jax.Array:
    """MetaBIN's SCT loss: mean over present domains of the mean cosine to the domain centre.

    Args:
      features: [N, D] embeddings (normalised here).
      domains: [N] domain ids in [0, num_domains).
      num_domains: static number of domain ids (absent domains are skipped).

    Returns:
      Scalar in [-1, 1]; minimise it.
    """
    f = vectors.l2_normalize(features)
    onehot = jax.nn.one_hot(domains, num_domains, dtype=f.dtype)  # [N, K]
    counts = jnp.sum(onehot, axis=0)  # [K]
    centres = (onehot.T @ f) / jnp.maximum(counts, 1.0)[:, None]  # [K, D]
    # cosine(f_i, c_d) = f_i . c_d / |c_d| since |f_i| = 1; absent domains have c = 0.
    centre_norm = vectors.safe_norm(centres)
    cos = jnp.sum(f * centres[domains], axis=-1) / centre_norm[domains]
    per_domain = (onehot.T @ cos) / jnp.maximum(counts, 1.0)
    present = counts > 0
    return _masked_mean(per_domain, present)


def memory_logits(
    features: jax.Array,
    memory: jax.Array,
    class_domains: jax.Array,
    domain: jax.Array,
    temperature: float = MEMORY_TEMPERATURE,
) -> jax.Array:
    """Similarities / temperature to the classes of ``domain`` (other classes masked).

    Args:
      features: [N, C] features (normalised here).
      memory: [num_classes, C] L2-normalised class centroids of all source domains
        (labels are disjoint across domains, so one array holds every domain's memory).
      class_domains: [num_classes] the domain each class belongs to.
      domain: [N] or scalar domain of each feature.
      temperature: tau.
    """
    sim = vectors.l2_normalize(features) @ jax.lax.stop_gradient(memory).T / temperature
    own = class_domains[None, :] == jnp.reshape(domain, (-1, 1))
    return jnp.where(own, sim, _MASKED_LOGIT)


def memory_identification_loss(
    features: jax.Array,
    labels: jax.Array,
    memory: jax.Array,
    class_domains: jax.Array,
    domain: jax.Array,
    temperature: float = MEMORY_TEMPERATURE,
) -> jax.Array:
    """M3L memory-based identification loss: cross-entropy over the own domain's memory.

    Args: as ``memory_logits``; labels: [N] global class indices.

    Returns:
      Scalar mean over the batch.
    """
    logits = memory_logits(features, memory, class_domains, domain, temperature)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))
