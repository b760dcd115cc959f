"""The training state: one pytree holding everything a step reads and writes.

Every trainer's state is a ``flax.struct.dataclass`` whose ``train`` field is the common
:class:`TrainState` (step, parameters, BatchNorm statistics, optimizer state, the
first non-finite step) and whose other fields are the method's own (a cluster memory,
mean teachers, ...). Methods without fields of their own use :class:`State` itself.
The run loop, the checkpoints and the non-finite check only read ``state.train``.

One update rule for all: :meth:`TrainState.apply_gradients` applies an optax update
unless the loss (or any other value the caller passes in ``ok``) is NaN or inf, in
which case nothing moves and the step is recorded; :func:`keep_if` applies the same
rule to a method's own fields.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


def keep_if(ok: jax.Array, new: Any, old: Any) -> Any:
    """``new`` where ``ok`` (a scalar bool), else ``old``, leaf by leaf."""
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


@flax.struct.dataclass
class TrainState:
    """What every trainer's step reads and writes; the optax transform is a closure.

    Attributes:
      step: global step (int32).
      params: parameters; ``params['model']`` is the network (MMT: also
        ``params['model2']``), ``params['center_loss']`` the center-loss centres.
      batch_stats: BatchNorm running statistics.
      opt_state: optax state.
      nonfinite_step: -1, or the first step whose loss was NaN/inf (that update was
        skipped).
      epoch: the epoch being trained (set by the run loop; per-epoch schedules read it).
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    nonfinite_step: jax.Array
    epoch: jax.Array

    @classmethod
    def create(cls, params: Any, batch_stats: Any, opt_state: Any) -> TrainState:
        """A state at step 0."""
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=batch_stats,
            opt_state=opt_state,
            nonfinite_step=jnp.full((), -1, jnp.int32),
            epoch=jnp.zeros((), jnp.int32),
        )

    def apply_gradients(
        self,
        tx: optax.GradientTransformation,
        grads: Any,
        loss: jax.Array,
        batch_stats: Any,
        ok: jax.Array | bool = True,
    ) -> tuple[TrainState, jax.Array]:
        """One optimizer update, skipped when ``loss`` is not finite (or ``ok`` False).

        Returns:
          (next state, ok): ``ok`` is the scalar bool the caller uses to keep or drop
          its own fields (``keep_if``). A skipped step still counts (``step`` + 1) and
          is recorded in ``nonfinite_step``.
        """
        updates, new_opt = tx.update(grads, self.opt_state, self.params, epoch=self.epoch)
        new_params = optax.apply_updates(self.params, updates)
        ok = jnp.isfinite(loss) & ok
        return self.replace(
            step=self.step + 1,
            params=keep_if(ok, new_params, self.params),
            batch_stats=keep_if(ok, batch_stats, self.batch_stats),
            opt_state=keep_if(ok, new_opt, self.opt_state),
            nonfinite_step=jnp.where(
                ok | (self.nonfinite_step >= 0), self.nonfinite_step, self.step
            ),
        ), ok


@flax.struct.dataclass
class State:
    """The state of a method with no fields of its own (supervised, MetaBIN)."""

    train: TrainState


def grad_norm(grads: Any) -> jax.Array:
    """Global L2 norm of a gradient tree (logged by every trainer)."""
    return optax.tree.norm(grads)


def eval_variables(state: Any, net: str = "model") -> dict:
    """The variables ``model.apply`` takes, from a state whose ``train`` holds the network
    under ``params[net]`` (and, with several networks, ``batch_stats[net]``)."""
    params = state.train.params
    stats = state.train.batch_stats
    if "model2" in params:  # MMT's two students: statistics per network
        stats = stats[net]
    return {"params": params[net], "batch_stats": stats}
