"""The training state: one pytree holding everything a step reads and writes."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training; the optax transform is a closure, not a field.

    Attributes:
      step: global step (int32).
      params: model parameters; ``params['center_loss']`` holds the class centres when the
        center loss is on.
      batch_stats: BatchNorm running statistics.
      opt_state: optax state.
      nonfinite_step: -1, or the first step whose loss was NaN/inf (that update was skipped).
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    nonfinite_step: jax.Array

    @classmethod
    def create(cls, params: Any, batch_stats: Any, opt_state: Any) -> TrainState:
        """A state at step 0."""
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=batch_stats,
            opt_state=opt_state,
            nonfinite_step=jnp.full((), -1, jnp.int32),
        )


def first_nonfinite(nonfinite_step: jax.Array, step: jax.Array, ok: jax.Array) -> jax.Array:
    """The new ``nonfinite_step``: ``step`` if this is the first non-finite loss, else unchanged."""
    return jnp.where(ok | (nonfinite_step >= 0), nonfinite_step, step)
