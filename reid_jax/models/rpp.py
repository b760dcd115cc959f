"""Refined part pooling (RPP; Sun et al., "Beyond Part Models: Person Retrieval with
Refined Part Pooling (and A Strong Convolutional Baseline)", ECCV 2018, Sec. 3.2-3.3).

PCB cuts the stage-4 map into P uniform horizontal stripes. RPP replaces the stripes by a
soft assignment: a part classifier (a linear layer over the C-dim column vector f at each
position, i.e. a 1x1 convolution, then a softmax over the P parts) gives every position a
probability p_i(f) of belonging to part i, and part i's feature is the p_i-weighted
average of the column vectors,

    g_i = sum_pos p_i(f_pos) f_pos / sum_pos p_i(f_pos).

When every position belongs to exactly one part with probability 1 and the parts are the
PCB stripes, g_i is the stripe mean, i.e. PCB's pooling (tested). The paper writes the
part as the set {p_i(f) f} average-pooled over the map; the official code
(syfafterzy/PCB_RPP_for_reID, ``reid/models/resnet_rpp.py``) multiplies that mean by P,
which equals the weighted average above only when the parts are equally large; the
weighted average (a commented-out variant there) keeps g_i on the scale of the stripe
means whatever a part's size. Two further differences from that code, which follows its
own experiments rather than the paper: its classifier sees the map averaged down to 256
channels and centred by its spatial mean; ours sees f itself, as the paper's
softmax(W_i^T f). Both have a bias.

Induced training (Sec. 3.3): train PCB, add the part classifier, train it alone with the
rest fixed, then fine-tune everything: ``model.rpp``, ``model.init_from_run`` (the PCB
run) and ``optim.rpp_classifier_only_epochs`` (see experiments/pcb.py).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

# The other classifiers' init (BoT `weights_init_classifier`, normal std 0.001): the
# assignment starts near uniform (every part near the global mean) and the part losses
# pull the parts apart. The paper does not give an init.
PART_CLASSIFIER_STD = 0.001
# Guards the division for a part that no position belongs to.
_EPS = 1e-12


def refined_pool(fmap: jax.Array, part_probs: jax.Array) -> jax.Array:
    """Part features as the probability-weighted averages of the column vectors.

    Args:
      fmap: [N, H, W, C] feature map.
      part_probs: [N, H, W, P] probability of each position belonging to each part
        (non-negative; each position's P values usually sum to 1).

    Returns:
      [N, P, C] float32: part i is sum_pos p_i f / sum_pos p_i.
    """
    x = jnp.asarray(fmap, jnp.float32)
    p = jnp.asarray(part_probs, jnp.float32)
    weighted = jnp.einsum("nhwc,nhwp->npc", x, p)
    mass = jnp.sum(p, axis=(1, 2))
    return weighted / jnp.maximum(mass, _EPS)[..., None]


class PartClassifier(nn.Module):
    """Linear classifier of each column vector into P parts (a 1x1 convolution).

    Attributes:
      num_parts: P.
    """

    num_parts: int

    @nn.compact
    def __call__(self, fmap: jax.Array) -> jax.Array:
        """Part logits of every position.

        Args:
          fmap: [N, H, W, C] feature map.

        Returns:
          [N, H, W, P] float32 logits; softmax over the last axis gives p_i(f).
        """
        return nn.Dense(
            self.num_parts,
            kernel_init=nn.initializers.normal(PART_CLASSIFIER_STD),
            bias_init=nn.initializers.zeros,
            dtype=jnp.float32,
            param_dtype=jnp.float32,
            name="classifier",
        )(jnp.asarray(fmap, jnp.float32))
