"""Metric-learning losses on embeddings.

- Batch-hard triplet: Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for
  Person Re-Identification", arXiv:1703.07737, 2017. Margin 0.3 as in BoT (Luo et al.,
  CVPRW 2019, `MODEL.TRIPLET_MARGIN`); the soft margin is the paper's softplus variant.
- Center loss: Wen et al., "A Discriminative Feature Learning Approach for Deep Face
  Recognition", ECCV 2016, in BoT's form (`layers/center_loss.py`: sum of squared
  distances to the class centre divided by the batch size, no 1/2 factor). The centres
  are an explicit array; the trainer owns and updates them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# BoT clamps squared distances at 1e-12 before the square root (`euclidean_dist`): the
# gradient of sqrt at 0 is infinite, and 0 * inf would poison masked entries.
DIST_EPS = 1e-12
TRIPLET_MARGIN = 0.3


def pairwise_distances(x: jax.Array, y: jax.Array, squared: bool = False) -> jax.Array:
    """Euclidean distances between the rows of x and y.

    Args:
        x: [N, D].
        y: [M, D].
        squared: return squared distances.

    Returns:
        [N, M] distances (float32 or wider). Squared distances are clamped at 0 against
        rounding; the square root is taken of max(d2, 1e-12) so its gradient is finite.
    """
    dtype = jnp.promote_types(jnp.result_type(x, y), jnp.float32)
    x = jnp.asarray(x, dtype)
    y = jnp.asarray(y, dtype)
    d2 = jnp.sum(x * x, axis=-1)[:, None] + jnp.sum(y * y, axis=-1)[None, :] - 2.0 * x @ y.T
    d2 = jnp.maximum(d2, 0.0)
    if squared:
        return d2
    return jnp.sqrt(jnp.maximum(d2, DIST_EPS))


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
) -> jax.Array:
    """Batch-hard triplet loss (Hermans et al. 2017).

    Args:
        features: [N, D] embeddings (not normalised here; BoT uses raw features).
        labels: [N] integer identities.
        margin: hinge margin, ignored when `soft_margin`.
        soft_margin: use softplus(d_pos - d_neg) instead of the hinge.

    Returns:
        Scalar mean over anchors that have at least one positive and one negative
        (0 when there is none).
    """
    dist = pairwise_distances(features, features)
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
