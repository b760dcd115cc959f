"""Pairwise verification loss of the identification + verification (siamese) model.

Zheng, Zheng and Yang, "A Discriminatively Learned CNN Embedding for Person
Re-identification", ACM TOMM 2018 (arXiv:1611.05666, 2016): besides the identity
classifier, a verification head takes the element-wise square (f_a - f_b)^2 of two
embeddings (its "Square layer") and classifies it as same / different person with a
2-way softmax (`reid_jax.models.verification.VerificationHead` computes the logits for
every pair of a batch). The paper feeds image pairs with positives and negatives in
ratio 1:1; a P x K batch holds far more negative than positive pairs, so here the
positive and the negative pairs are averaged separately and the two means weigh
equally, which is the expectation under the paper's 1:1 sampling.

Samples with a negative label (unlabeled or generated images, see `losses/lsro.py`)
take part in no pair.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Class index of "same person" in the 2-way pair logits.
SAME = 1


def pair_targets(labels: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Which pairs of a batch are positives and negatives.

    Args:
        labels: [N] integer identities; negative labels mark unlabeled samples.

    Returns:
        (same, pos_mask, neg_mask), each [N, N] bool: same identity; valid positive pairs
        (i != j, both labeled, same identity); valid negative pairs.
    """
    labeled = labels >= 0
    valid = labeled[:, None] & labeled[None, :] & ~jnp.eye(labels.shape[0], dtype=bool)
    same = labels[:, None] == labels[None, :]
    return same, valid & same, valid & ~same


def verification_loss(pair_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Balanced same/different cross-entropy over all pairs of a batch.

    Args:
        pair_logits: [N, N, 2] logits of pair (i, j); index 1 means "same person".
        labels: [N] integer identities (negative: unlabeled, no pair).

    Returns:
        Scalar: (mean CE over positive pairs + mean CE over negative pairs) / 2; the
        mean of whichever exists when the batch has only one kind; 0 with none.
    """
    logits = jnp.asarray(pair_logits, jnp.promote_types(pair_logits.dtype, jnp.float32))
    same, pos, neg = pair_targets(labels)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.where(same, log_probs[..., SAME], log_probs[..., 1 - SAME])
    num_pos, num_neg = jnp.sum(pos), jnp.sum(neg)
    pos_mean = jnp.sum(jnp.where(pos, nll, 0.0)) / jnp.maximum(num_pos, 1)
    neg_mean = jnp.sum(jnp.where(neg, nll, 0.0)) / jnp.maximum(num_neg, 1)
    kinds = (num_pos > 0).astype(nll.dtype) + (num_neg > 0).astype(nll.dtype)
    return (pos_mean + neg_mean) / jnp.maximum(kinds, 1.0)


def verification_accuracy(pair_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Balanced accuracy of the same/different decisions (a training metric).

    Args:
        pair_logits: [N, N, 2] pair logits.
        labels: [N] identities.

    Returns:
        Scalar mean of the accuracy on positive pairs and on negative pairs.
    """
    same, pos, neg = pair_targets(labels)
    correct = (jnp.argmax(pair_logits, axis=-1) == SAME) == same
    pos_acc = jnp.sum(correct & pos) / jnp.maximum(jnp.sum(pos), 1)
    neg_acc = jnp.sum(correct & neg) / jnp.maximum(jnp.sum(neg), 1)
    return 0.5 * (pos_acc + neg_acc)
