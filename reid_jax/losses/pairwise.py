"""Losses and pair selection of the pair networks (``reid_jax/models/pairwise.py``).

- ``select_pairs``: from a P x K batch, every picture's positive partner (another
  picture of its identity, from another camera when there is one) and its negatives
  (pictures of other identities, other cameras first), drawn at random from the step's
  key: 1 positive and ``negatives`` negatives per picture, IDLA's 1:2 ratio with 2
  (Ahmed et al. Sec. 6.2: negatives down-sampled to twice the positives).
- ``pair_softmax_loss``: IDLA's 2-way softmax cross-entropy (class 1 = same person).
- ``contrastive_loss``: the gated siamese CNN's contrastive loss on the Euclidean
  distance d of the two L2-normalised features, y d^2 + (1 - y) max(m - d, 0)^2
  (Hadsell et al. 2006, as Varior et al. 2016 use it).
Both take per-pair weights, so that a batch can count only some of its pairs (IDLA's
hard-negative phase: each picture's positive and its hardest negative, 1:1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reid_jax.models import pairwise as pair_models

# Bonus added to a uniform [0, 1) draw: pairs across cameras are always preferred.
_OTHER_CAMERA = 2.0


def candidate_scores(key: jax.Array, labels: jax.Array, cameras: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Random preference scores of every (i, j) of a batch as a positive and as a negative.

    Returns:
      (positive [N, N], negative [N, N]): uniform draws plus 2 across cameras; -inf where
      j cannot be i's positive (other identity, or i itself) or negative (same identity).
    """
    n = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    across = (cameras[:, None] != cameras[None, :]).astype(jnp.float32) * _OTHER_CAMERA
    k_pos, k_neg = jax.random.split(key)
    pos = jnp.where(same & ~jnp.eye(n, dtype=bool),
                    jax.random.uniform(k_pos, (n, n)) + across, -jnp.inf)
    neg = jnp.where(~same, jax.random.uniform(k_neg, (n, n)) + across, -jnp.inf)
    return pos, neg


def select_pairs(
    key: jax.Array, labels: jax.Array, cameras: jax.Array, negatives: int,
) -> tuple[jax.Array, jax.Array]:
    """Each picture's positive partner and ``negatives`` random negatives.

    Args:
      key: the step's key.
      labels: [N] identities (every identity of a P x K batch has K >= 2 pictures).
      cameras: [N] cameras.
      negatives: negatives per picture.

    Returns:
      (first, second): [N * (1 + negatives)] indices into the batch; pairs 0..N-1 are the
      positives (i, partner of i), then for each picture its negatives in order.
    """
    pos, neg = candidate_scores(key, labels, cameras)
    n = labels.shape[0]
    partner = jnp.argmax(pos, axis=1)
    _, others = jax.lax.top_k(neg, negatives)  # [N, negatives]
    first = jnp.concatenate([jnp.arange(n), jnp.repeat(jnp.arange(n), negatives)])
    second = jnp.concatenate([partner, others.reshape(-1)])
    return first, second


def hardest_first(candidates: jax.Array, distances: jax.Array) -> jax.Array:
    """Each row's candidates reordered by their pair distance, smallest (hardest) first.

    Args:
      candidates: [N, C] negative candidates of each picture.
      distances: [N, C] the network's pair distance of each (picture, candidate).
    """
    order = jnp.argsort(distances, axis=1, stable=True)
    return jnp.take_along_axis(candidates, order, axis=1)


def _weighted_mean(values: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return jnp.mean(values)
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1e-12)


def pair_softmax_loss(logits: jax.Array, same: jax.Array,
                      weights: jax.Array | None = None) -> jax.Array:
    """Mean 2-way cross-entropy of pairs ([n, 2] logits, class 1 = same; [n] bool)."""
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.where(same, log_p[:, pair_models.SAME], log_p[:, 1 - pair_models.SAME])
    return _weighted_mean(nll, weights)


def contrastive_loss(distance: jax.Array, same: jax.Array, margin: float,
                     weights: jax.Array | None = None) -> jax.Array:
    """Mean y d^2 + (1 - y) max(margin - d, 0)^2 of pairs at distance ``d``."""
    d = distance.astype(jnp.float32)
    terms = jnp.where(same, jnp.square(d), jnp.square(jnp.maximum(margin - d, 0.0)))
    return _weighted_mean(terms, weights)
