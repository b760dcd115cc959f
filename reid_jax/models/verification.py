"""Verification head of the identification + verification model (Zheng et al. 2016).

Zheng, Zheng and Yang, "A Discriminatively Learned CNN Embedding for Person
Re-identification", ACM TOMM 2018 (arXiv:1611.05666): a parameter-free "Square layer"
(f_a - f_b)^2 followed by a 1x1 convolution to 2 outputs (same / different) and a
softmax; the loss is in `reid_jax/losses/verification.py`. Here the head scores every
pair of a batch at once ([N, N, 2]), so P x K batches need no separate pair sampler.
The paper applies dropout before the head; we leave it out.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

# Same small-normal init as the identity classifiers (BoT `weights_init_classifier`).
VERIFICATION_STD = 0.001


def pair_logits(features: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """2-way logits of every pair: ((f_i - f_j)^2) @ kernel + bias.

    Args:
        features: [N, D] embeddings.
        kernel: [D, 2].
        bias: [2].

    Returns:
        [N, N, 2] float32 logits, symmetric in (i, j).
    """
    f = jnp.asarray(features, jnp.float32)
    square = (f[:, None, :] - f[None, :, :]) ** 2  # [N, N, D]; 64 x 64 x 2048 is 32 MB
    return jnp.einsum("ijd,dk->ijk", square, kernel) + bias


class VerificationHead(nn.Module):
    """Same / different classifier on squared feature differences of all batch pairs.

    Attributes:
        std: init std of the kernel.
    """

    std: float = VERIFICATION_STD

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        """Scores all pairs.

        Args:
            features: [N, D] embeddings.

        Returns:
            [N, N, 2] logits (index 1: same person).
        """
        dim = features.shape[-1]
        kernel = self.param("kernel", nn.initializers.normal(self.std), (dim, 2), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (2,), jnp.float32)
        return pair_logits(features, kernel, bias)
