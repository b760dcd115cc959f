"""Attribute heads of the attribute-person recognition network (APR).

Lin et al., "Improving Person Re-identification by Attribute and Identity Learning",
Pattern Recognition 2019 (arXiv:1703.07220): M attribute classifiers on the shared
embedding, beside the identity classifier. With binary attributes the M classifiers are
one [D, M] linear layer giving one logit each (sigmoid); losses in
`reid_jax/losses/attribute.py`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

# The identity classifier's init (BoT `weights_init_classifier`, normal std 0.001).
ATTRIBUTE_STD = 0.001


class AttributeHeads(nn.Module):
    """M binary attribute classifiers (one logit each, with bias).

    Attributes:
        num_attributes: M.
        std: init std of the kernel.
    """

    num_attributes: int
    std: float = ATTRIBUTE_STD

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        """Predicts attribute logits.

        Args:
            features: [N, D] embeddings (the BNNeck output in ReIDNet).

        Returns:
            [N, M] float32 logits; sigmoid(logit) is P(attribute present).
        """
        return nn.Dense(
            self.num_attributes,
            kernel_init=nn.initializers.normal(self.std),
            name="fc",
        )(jnp.asarray(features, jnp.float32))
