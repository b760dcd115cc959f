"""The gradient step most trainers share: augment, loss and gradient, one update, metrics.

A method that trains all its parameters on one objective (supervised, cluster contrast,
PPLR, CAP, MMT) writes only its loss and, if it keeps fields of its own, what happens to
them after the update; ``gradient_step`` turns that into the jitted
``train_step(state, batch, rng) -> (state, metrics)`` contract:

1. the step's key is ``fold_in(rng, state.train.step)``; the batch's pictures are
   augmented from it (``views`` independently augmented copies, MMT: 2);
2. ``loss_fn(state, params, images, batch, key) -> (loss, aux)`` is differentiated in the
   parameters (``key``: for the network's dropout layers); ``aux['batch_stats']`` are the new BatchNorm statistics and
   ``aux['metrics']`` scalars to log;
3. ``TrainState.apply_gradients``: skipped, and recorded, when the loss is not finite;
4. ``after(state, ok, aux, batch) -> (state, metrics)`` updates the method's own fields
   (memories, teachers), which it keeps unchanged where ``ok`` is False
   (``state.keep_if``);
5. metrics: the loss terms, the learning rate and the gradient norm, left on the device.

MetaBIN and M3L, whose steps are two nested optimisations, write their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from reid_jax.train import forward, optim
from reid_jax.train import state as state_lib

LossFn = Callable[[Any, Any, Any, dict, jax.Array], tuple[jax.Array, dict]]
AfterFn = Callable[[Any, jax.Array, dict, dict], tuple[Any, dict]]


def gradient_step(
    fwd: forward.Forward,
    tx: optax.GradientTransformation,
    lr_fn: optim.Schedule,
    loss_fn: LossFn,
    after: AfterFn | None = None,
    views: int = 1,
) -> Callable[[Any, dict, jax.Array], tuple[Any, dict]]:
    """The (unjitted) ``train_step(state, batch, rng)`` of ``loss_fn``.

    Args:
      fwd: the trainer's forward (augmentation settings).
      tx: the optax transform over ``state.train.params``.
      lr_fn: the learning-rate schedule (logged).
      loss_fn: ``(state, params, images, batch, key) -> (loss, aux)``; ``images`` is one
        augmented batch, or a tuple of ``views`` of them; ``key`` the dropout key.
      after: ``(state with the updated TrainState, ok, aux, batch) -> (state, metrics)``.
      views: augmented copies of the batch.
    """

    def train_step(state: Any, batch: dict, rng: jax.Array) -> tuple[Any, dict]:
        st = state.train
        key = jax.random.fold_in(jax.random.fold_in(rng, st.step), 1)  # dropout
        if views == 1:
            images = fwd.augment(rng, st.step, batch["image"])
        else:
            keys = jax.random.split(jax.random.fold_in(rng, st.step), views)
            images = tuple(fwd.augment(k, 0, batch["image"]) for k in keys)
        (loss, aux), grads = jax.value_and_grad(
            lambda p: loss_fn(state, p, images, batch, key), has_aux=True
        )(st.params)
        new_train, ok = st.apply_gradients(tx, grads, loss, aux["batch_stats"])
        state = state.replace(train=new_train)
        metrics = {"loss": loss, **aux["metrics"], "lr": lr_fn(st.step, st.epoch),
                   "grad_norm": state_lib.grad_norm(grads)}
        if after is not None:
            state, extra = after(state, ok, aux, batch)
            metrics.update(extra)
        return state, metrics

    return train_step
