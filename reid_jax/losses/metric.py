"""Metric-learning losses on embeddings.

- Batch-hard triplet: Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for
  Person Re-Identification", arXiv:1703.07737, 2017. Margin 0.3 as in BoT (Luo et al.,
  CVPRW 2019, `MODEL.TRIPLET_MARGIN`); the soft margin is the paper's softplus variant.
- Center loss: Wen et al., "A Discriminative Feature Learning Approach for Deep Face
  Recognition", ECCV 2016, in BoT's form (`layers/center_loss.py`: sum of squared
  distances to the class centre divided by the batch size, no 1/2 factor). The centres
  are an explicit array; the trainer owns and updates them.
- Weighted regularization triplet: Ye et al., "Deep Learning for Person
  Re-identification: A Survey and Outlook", TPAMI 2021 (AGW), eq. 6; details from the
  official code (mangye16/ReID-Survey, `modeling/layer/triplet_loss.py`,
  `WeightedRegularizedTriplet`): softmax weights over the distances of the positives
  (the anchor itself included, as there) and over the negated distances of the
  negatives, soft margin, no hyper-parameter.
- Pairwise circle loss: Sun et al., "Circle Loss: A Unified Perspective of Pair
  Similarity Optimization", CVPR 2020, eq. 6 with pair-wise labels on cosine
  similarities; the weights alpha are constants for back-propagation (stop gradient),
  as in the paper and fast-reid (`fastreid/modeling/losses/circle_loss.py`). Defaults
  m=0.25, gamma=128 from fast-reid `fastreid/config/defaults.py`
  (`MODEL.LOSSES.CIRCLE.MARGIN/GAMMA`).

Anchors without a positive or without a negative are left out of every mean here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reid_jax import vectors

# BoT clamps squared distances at 1e-12 before the square root (`euclidean_dist`): the
# gradient of sqrt at 0 is infinite, and 0 * inf would poison masked entries.
TRIPLET_MARGIN = 0.3
CIRCLE_MARGIN = 0.25
CIRCLE_GAMMA = 128.0
# A finite stand-in for -inf in masked log-sum-exps (fast-reid uses -99999999): keeps
# every gradient finite; rows that would be all-masked are left out of the mean anyway.
_MASKED_LOGIT = -1e9


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    count = jnp.sum(mask)
    return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(count, 1)


def hardest_pairs(dist: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Hardest positive and negative distance of every anchor.

    Args:
        dist: [N, N] distances.
        labels: [N] integer identities.

    Returns:
        (d_pos, d_neg, valid): per-anchor max distance to another sample of the same
        label, min distance to a sample of another label, and whether the anchor has
        both. Entries of invalid anchors are finite but meaningless.
    """
    same = labels[:, None] == labels[None, :]
    pos_mask = same & ~jnp.eye(labels.shape[0], dtype=bool)
    neg_mask = ~same
    # Distances are >= 0, so 0 is a neutral fill for the max; for the min, a constant
    # above every distance (no gradient flows into unselected `where` branches).
    d_pos = jnp.max(jnp.where(pos_mask, dist, 0.0), axis=1)
    big = jax.lax.stop_gradient(jnp.max(dist)) + 1.0
    d_neg = jnp.min(jnp.where(neg_mask, dist, big), axis=1)
    valid = jnp.any(pos_mask, axis=1) & jnp.any(neg_mask, axis=1)
    return d_pos, d_neg, valid


def batch_hard_triplet(
    features: jax.Array,
    labels: jax.Array,
    margin: float = TRIPLET_MARGIN,
    soft_margin: bool = False,
    distance: str = "euclidean",
) -> jax.Array:
    """Batch-hard triplet loss (Hermans et al. 2017).

    Args:
        features: [N, D] embeddings (not normalised here; BoT uses raw features).
        labels: [N] integer identities.
        margin: hinge margin, ignored when `soft_margin`.
        soft_margin: use softplus(d_pos - d_neg) instead of the hinge.
        distance: 'euclidean', or 'cosine' (1 - cos, IANet's official triplet).

    Returns:
        Scalar mean over anchors that have at least one positive and one negative
        (0 when there is none).
    """
    if distance == "cosine":
        f = vectors.l2_normalize(features)
        dist = 1.0 - f @ f.T
    else:
        dist = vectors.euclidean(features, features)
    d_pos, d_neg, valid = hardest_pairs(dist, labels)
    if soft_margin:
        per_anchor = jax.nn.softplus(d_pos - d_neg)
    else:
        per_anchor = jax.nn.relu(d_pos - d_neg + margin)
    return _masked_mean(per_anchor, valid)


def center_loss(features: jax.Array, labels: jax.Array, centers: jax.Array) -> jax.Array:
    """Center loss (Wen et al. 2016), BoT form.

    Args:
        features: [N, D] embeddings.
        labels: [N] integer class indices into `centers`.
        centers: [num_classes, D] class centres.

    Returns:
        Scalar mean over the batch of ||f_i - c_{y_i}||^2.
    """
    dtype = jnp.promote_types(features.dtype, jnp.float32)
    diff = jnp.asarray(features, dtype) - jnp.asarray(centers, dtype)[labels]
    return jnp.mean(jnp.sum(diff * diff, axis=-1))


def _masked_softmax(logits: jax.Array, mask: jax.Array) -> jax.Array:
    logits = jnp.where(mask, logits, _MASKED_LOGIT)
    logits = logits - jax.lax.stop_gradient(jnp.max(logits, axis=1, keepdims=True))
    weights = jnp.where(mask, jnp.exp(logits), 0.0)
    return weights / jnp.maximum(jnp.sum(weights, axis=1, keepdims=True), 1e-12)


def weighted_regularized_triplet(features: jax.Array, labels: jax.Array) -> jax.Array:
    """AGW weighted regularization triplet (Ye et al., TPAMI 2021).

    Per anchor i: d_p = sum_j w_ij d_ij over positives with w = softmax(d) (the far
    positives weigh most), d_n = sum_k w_ik d_ik over negatives with w = softmax(-d),
    loss softplus(d_p - d_n). Following the official code, the anchor counts among its
    own positives (at distance ~0, so with the smallest weight).

    Args:
        features: [N, D] embeddings.
        labels: [N] integer identities.

    Returns:
        Scalar mean over anchors with at least one negative (0 when there is none).
    """
    dist = vectors.euclidean(features, features)
    pos_mask = labels[:, None] == labels[None, :]
    neg_mask = ~pos_mask
    d_pos = jnp.sum(_masked_softmax(dist, pos_mask) * dist, axis=1)
    d_neg = jnp.sum(_masked_softmax(-dist, neg_mask) * dist, axis=1)
    return _masked_mean(jax.nn.softplus(d_pos - d_neg), jnp.any(neg_mask, axis=1))


def pairwise_circle_loss(
    features: jax.Array,
    labels: jax.Array,
    margin: float = CIRCLE_MARGIN,
    gamma: float = CIRCLE_GAMMA,
) -> jax.Array:
    """Circle loss with pair-wise labels (Sun et al., CVPR 2020, eq. 6).

    On cosine similarities s of L2-normalised features, per anchor:
    softplus(logsumexp_n(gamma * a_n * (s_n - m)) + logsumexp_p(-gamma * a_p * (s_p - 1 + m)))
    with a_p = relu(1 + m - s_p), a_n = relu(s_n + m) held constant in the gradient.

    Args:
        features: [N, D] embeddings (normalised here).
        labels: [N] integer identities.
        margin: relaxation m (optima 1 - m and m, decision margins 1 - m and m).
        gamma: scale.

    Returns:
        Scalar mean over anchors with at least one positive (other than itself) and
        one negative (0 when there is none).
    """
    emb = vectors.l2_normalize(features)
    sim = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    pos_mask = same & ~jnp.eye(labels.shape[0], dtype=bool)
    neg_mask = ~same
    alpha_p = jax.nn.relu(1.0 + margin - jax.lax.stop_gradient(sim))
    alpha_n = jax.nn.relu(jax.lax.stop_gradient(sim) + margin)
    logit_p = jnp.where(pos_mask, -gamma * alpha_p * (sim - (1.0 - margin)), _MASKED_LOGIT)
    logit_n = jnp.where(neg_mask, gamma * alpha_n * (sim - margin), _MASKED_LOGIT)
    per_anchor = jax.nn.softplus(
        jax.nn.logsumexp(logit_p, axis=1) + jax.nn.logsumexp(logit_n, axis=1)
    )
    valid = jnp.any(pos_mask, axis=1) & jnp.any(neg_mask, axis=1)
    return _masked_mean(per_anchor, valid)
