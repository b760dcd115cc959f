"""Batch-Instance Normalization (BIN) with a learnable per-channel gate.

Nam and Kim, "Batch-Instance Normalization for Adaptively Style-Invariant Neural
Networks", NeurIPS 2018, in the form MetaBIN uses (Choi et al., "Meta Batch-Instance
Normalization for Generalizable Person Re-Identification", CVPR 2021):

    y = g * BN(x) + (1 - g) * IN(x)

- BN and IN each have their own affine parameters (MetaBIN, official code
  bismex/MetaBIN `fastreid/layers/batch_norm.py`; the config key
  `MODEL.NORM.IN_AFFINE` there; REFERENCE.md).
- IN keeps no running statistics (it always normalises each image by itself).
- The gate g has one entry per channel, initialised to 1 (`MODEL.NORM.BIN_INIT = 'one'`),
  so that a BIN network starts as the plain BatchNorm network; the trainer clamps it to
  [0, 1] after every update (``clamp_gates``) and, straight-through, after the inner
  update of the meta step (``clamp_gates_straight_through``).

The gate parameter is named ``gate`` (constant ``GATE_NAME``): optax masks and the
MetaBIN trainer separate gates from every other parameter by that name
(``is_gate_path``, ``gate_mask``).

The module mirrors `flax.linen.BatchNorm`'s construction (``use_running_average`` is a
field, ``__call__(x)``), so a ResNet chooses it in place of BatchNorm in one line.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

GATE_NAME = "gate"
# PyTorch BatchNorm2d / InstanceNorm2d defaults; Flax keeps `momentum` of the old
# running average (0.9 == PyTorch's momentum=0.1).
BN_MOMENTUM = 0.9
BN_EPS = 1e-5
IN_EPS = 1e-5


class BIN(nn.Module):
    """Gated mix of BatchNorm and InstanceNorm over the last (channel) axis.

    Attributes:
        use_running_average: use the BN running statistics (evaluation) instead of the
            batch's.
        momentum: BN running-average momentum (Flax convention).
        epsilon: BN epsilon.
        in_epsilon: IN epsilon.
        gate_init: initial gate value (1: start as BatchNorm).
        dtype: compute dtype (None: promote from the input and parameters).
    """

    use_running_average: bool = False
    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPS
    in_epsilon: float = IN_EPS
    gate_init: float = 1.0
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Normalises ``x`` [..., C] (NHWC for images, NC for vectors).

        Args:
            x: input; instance statistics are taken over every axis except the first
                (batch) and the last (channels).

        Returns:
            g * BN(x) + (1 - g) * IN(x), same shape.
        """
        bn = nn.BatchNorm(
            use_running_average=self.use_running_average,
            momentum=self.momentum,
            epsilon=self.epsilon,
            dtype=self.dtype,
            name="BN",
        )(x)
        inorm = nn.InstanceNorm(epsilon=self.in_epsilon, dtype=self.dtype, name="IN")(x)
        gate = self.param(
            GATE_NAME, nn.initializers.constant(self.gate_init), (x.shape[-1],), jnp.float32
        )
        gate = gate.astype(bn.dtype)
        return gate * bn + (1.0 - gate) * inorm


def _key(entry: Any) -> str:
    return str(getattr(entry, "key", getattr(entry, "name", entry)))


def is_gate_path(path: tuple) -> bool:
    """True if a pytree path (from ``jax.tree_util.tree_map_with_path``) ends at a gate."""
    return bool(path) and _key(path[-1]) == GATE_NAME


def gate_mask(params: Any) -> Any:
    """Boolean tree like ``params``: True at BIN gates (for ``optax.masked`` and friends)."""
    return jax.tree_util.tree_map_with_path(lambda p, _: is_gate_path(p), params)


def clamp_gates(params: Any) -> Any:
    """Clamps every BIN gate in ``params`` to [0, 1]; other leaves are returned unchanged.

    ``jnp.clip``'s gradient is 0 outside [0, 1] (and halved at exactly 1): right for the
    projection after an optimizer step, which takes no gradient.
    """
    return jax.tree_util.tree_map_with_path(
        lambda p, v: jnp.clip(v, 0.0, 1.0) if is_gate_path(p) else v, params
    )


def clamp_gates_straight_through(params: Any) -> Any:
    """``clamp_gates`` in the forward pass, the identity in the backward pass.

    MetaBIN's inner update clamps the updated gates in place (``update_gate.data.clamp_``,
    bismex/MetaBIN ``fastreid/modeling/ops.py``), which autograd does not see: the
    meta-gradient reaches a gate with factor 1 even when the clamp is active. The gates
    start at 1, where ``jnp.clip`` would stop (or halve) that gradient and the gates
    could only move down.
    """
    return jax.tree_util.tree_map_with_path(
        lambda p, v: v + jax.lax.stop_gradient(jnp.clip(v, 0.0, 1.0) - v)
        if is_gate_path(p) else v,
        params,
    )
