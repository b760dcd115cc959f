"""Functional inner steps of gradient-based meta-learning (MAML / MLDG style).

Li et al., "Learning to Generalize: Meta-Learning for Domain Generalization" (MLDG), AAAI
2018: theta' = theta - alpha * grad L_mtr(theta); the outer objective is evaluated at
theta' and differentiated through the inner step. Here the inner step is a pure function
of the parameters, so ``jax.grad`` of the outer objective is the exact second-order
meta-gradient (``first_order=True`` stops the gradient through the inner gradient, the
first-order approximation of Finn et al., ICML 2017).

Parameters are nested dicts (Flax); ``partition`` / ``merge`` split a tree by leaf name
so that only a subset (MetaBIN: the BIN gates) is meta-learned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp

# M3L's inner 'adam' solver (official code HeliosZhao/M3L, reid/models/MetaModules.py,
# `update_params(solver='adam')`): one Adam step from zero moments, with these constants.
ADAM_B1 = 0.9
ADAM_B2 = 0.999
ADAM_EPS = 1e-8
M3L_INNER_WEIGHT_DECAY = 5e-4


def partition(tree: dict, select: Callable[[tuple[str, ...]], bool]) -> tuple[dict, dict]:
    """Splits a nested dict into (selected leaves, the rest), each a nested dict.

    Args:
      tree: nested dict of arrays.
      select: predicate on the key path of a leaf, e.g. ``lambda p: p[-1] == 'gate'``.
    """
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(tree))
    chosen = {k: v for k, v in flat.items() if select(k)}
    rest = {k: v for k, v in flat.items() if not select(k)}
    return flax.traverse_util.unflatten_dict(chosen), flax.traverse_util.unflatten_dict(rest)


def merge(a: dict, b: dict) -> dict:
    """Inverse of ``partition``: the union of two nested dicts with disjoint leaves."""
    flat = flax.traverse_util.flatten_dict(a)
    flat.update(flax.traverse_util.flatten_dict(b))
    return flax.traverse_util.unflatten_dict(flat)


def sgd_step(params: Any, grads: Any, lr: jax.Array | float) -> Any:
    """theta - lr * g."""
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def adam_first_step(
    params: Any,
    grads: Any,
    lr: jax.Array | float,
    weight_decay: float = M3L_INNER_WEIGHT_DECAY,
    b1: float = ADAM_B1,
    b2: float = ADAM_B2,
    eps: float = ADAM_EPS,
) -> Any:
    """One Adam step from zero moments, as M3L's official inner update.

    With g <- g + wd * theta, m = (1 - b1) g, v = (1 - b2) g^2 + eps,
    theta' = theta - lr / (1 - b1) * m / (sqrt(v) / sqrt(1 - b2) + eps): roughly
    theta - lr * sign(g), a scale-free step whose size is set by lr alone.
    """

    def one(p: jax.Array, g: jax.Array) -> jax.Array:
        g = g + weight_decay * p
        m = (1.0 - b1) * g
        v = (1.0 - b2) * g * g + eps
        denom = jnp.sqrt(v) / math.sqrt(1.0 - b2) + eps
        return p - lr / (1.0 - b1) * m / denom

    return jax.tree.map(one, params, grads)


SOLVERS = {"sgd": sgd_step, "adam": adam_first_step}


def inner_update(
    loss_fn: Callable[[Any], jax.Array],
    params: Any,
    lr: jax.Array | float,
    solver: str = "sgd",
    first_order: bool = False,
    project: Callable[[Any], Any] | None = None,
    has_aux: bool = False,
) -> tuple[Any, Any]:
    """theta' = project(step(theta, grad loss_fn(theta), lr)), differentiable in theta.

    Args:
      loss_fn: the meta-train loss as a function of ``params``.
      params: the parameters adapted in the inner loop.
      lr: inner learning rate.
      solver: 'sgd' or 'adam' (see ``adam_first_step``).
      first_order: treat the inner gradient as a constant (no second-order terms).
      project: applied after the step (MetaBIN clamps its gates to [0, 1]).
      has_aux: ``loss_fn`` returns (loss, aux).

    Returns:
      (theta', meta-train loss at theta), or (theta', (loss, aux)) with ``has_aux``.
    """
    loss, grads = jax.value_and_grad(loss_fn, has_aux=has_aux)(params)
    if first_order:
        grads = jax.lax.stop_gradient(grads)
    new = SOLVERS[solver](params, grads, lr)
    return (project(new) if project is not None else new), loss


def triangular_lr(
    count: jax.Array, low: float, high: float, period: float, up_ratio: float = 0.5
) -> jax.Array:
    """PyTorch ``CyclicLR``'s default 'triangular' value after ``count`` scheduler steps.

    MetaBIN's inner (gate) learning-rate factor (bismex/MetaBIN
    ``fastreid/engine/defaults.py``: a ``CyclicLR`` from ``MIDDLE_LR / RATIO`` = 0.001 up to
    ``MIDDLE_LR * RATIO`` = 0.1 (configs/Base-DG.yml ``META_CYCLIC_MIDDLE_LR`` 0.01,
    ``META_CYCLIC_RATIO`` 10), one cycle every ``1 / META_CYCLIC_PERIOD_PER_EPOCH`` = 5
    epochs, half up and half down (``META_CYCLIC_UP_RATIO`` 0.5); the trainer steps it
    before each meta step, so the first meta step reads ``count = 1``). Starts at ``low``.

    Args:
      count: scheduler steps taken (``last_epoch`` of ``CyclicLR``).
      low, high: the cycle's bounds.
      period: steps per cycle.
      up_ratio: fraction of the cycle spent rising.
    """
    up = jnp.floor(period * up_ratio)
    total = up + (period - up)
    ratio = up / total
    pos = jnp.asarray(count, jnp.float32) / total
    x = pos - jnp.floor(pos)
    scale = jnp.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
    return low + (high - low) * scale
