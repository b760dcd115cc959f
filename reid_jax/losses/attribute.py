"""Attribute losses of the attribute-person recognition network (APR).

Lin, Zheng, Zheng, Wu, Hu, Yan and Yang, "Improving Person Re-identification by
Attribute and Identity Learning", Pattern Recognition 2019 (arXiv:1703.07220): a shared
ResNet-50 embedding feeds one identity classifier and M attribute classifiers; the loss
combines the identity loss and the mean of the M attribute losses. Here every attribute
is binary (sigmoid + binary cross-entropy); the multi-class attribute of the released
annotations (Market-1501 'age', 4 classes) can be one-hot encoded into 4 binary ones.
The attribute annotations are per identity (vana77/Market-1501_Attribute: 27 attributes
for the 751 training identities; vana77/DukeMTMC-attribute: 23 attributes).

Entries with a negative target are unknown and left out of the mean.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def attribute_bce(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean binary cross-entropy over the known attribute entries.

    Args:
        logits: [N, M] attribute logits (one per binary attribute).
        targets: [N, M] in {0, 1}; negative entries are unknown and ignored.

    Returns:
        Scalar mean over the known entries (0 when none is known), i.e. the mean over
        attributes of the per-attribute losses when every entry is known.
    """
    logits = jnp.asarray(logits, jnp.promote_types(logits.dtype, jnp.float32))
    targets = jnp.asarray(targets, logits.dtype)
    known = targets >= 0
    # -[t log s(x) + (1 - t) log(1 - s(x))] = softplus(x) - t x, stable for any x.
    per_entry = jax.nn.softplus(logits) - jnp.where(known, targets, 0.0) * logits
    return jnp.sum(jnp.where(known, per_entry, 0.0)) / jnp.maximum(jnp.sum(known), 1)


def attribute_accuracy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean accuracy of the thresholded (logit > 0) predictions on known entries."""
    known = targets >= 0
    correct = (logits > 0) == (targets > 0)
    return jnp.sum(correct & known) / jnp.maximum(jnp.sum(known), 1)
