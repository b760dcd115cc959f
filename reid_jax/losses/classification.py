"""Identity-classification losses.

Label smoothing: Szegedy et al., "Rethinking the Inception Architecture for Computer
Vision", CVPR 2016, as used for re-ID by BoT (Luo et al., CVPRW 2019,
`CrossEntropyLabelSmooth`, epsilon=0.1 in its configs): the target is
`(1 - eps) * onehot + eps / K` over K classes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """Softmax cross-entropy with optional label smoothing, averaged over the batch.

    Args:
        logits: [N, K] class scores (any float dtype; computed in float32 or wider).
        labels: [N] integer class indices in [0, K).
        label_smoothing: eps; the target puts 1 - eps + eps/K on the true class and
            eps/K on every other class.

    Returns:
        Scalar mean loss.
    """
    logits = jnp.asarray(logits, jnp.promote_types(logits.dtype, jnp.float32))
    num_classes = logits.shape[-1]
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    targets = jax.nn.one_hot(labels, num_classes, dtype=log_probs.dtype)
    targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
    return jnp.mean(-jnp.sum(targets * log_probs, axis=-1))
