"""Optimizers and learning-rate schedules from config.optim.

- Adam (with L2 weight decay added to the gradient, as PyTorch's Adam(weight_decay=...) that
  BoT uses) or SGD with momentum.
- Linear warmup, then multistep, cosine, constant or Caffe's "inv"; counted in steps or in epochs as the
  reference's scheduler is stepped (``optim.schedule_unit``, see ``schedule``).
- Masks (``optax.multi_transform``): the BNNeck BatchNorm bias is frozen (BoT, Luo et al.
  2019: ``bias.requires_grad_(False)``); the center-loss centres get their own SGD with
  lr 0.5 on gradients rescaled by 1/center_weight (BoT's train loop does
  ``param.grad *= 1 / CENTER_LOSS_WEIGHT`` before its center optimizer step); weight decay
  can skip BatchNorm parameters and biases.
- ``optim.backbone_lr_mult``: the pretrained backbone (the ``backbone`` submodule of the
  zoo models) at ``mult`` times the learning rate of the new layers. PCB (Sun et al.,
  ECCV 2018) trains the backbone 10x slower (0.01 vs 0.1): ``lr * 0.1`` for the base
  network in the reference implementations (layumi/Person_reID_baseline_pytorch
  ``train.py``: ``'lr': 0.1*opt.lr`` for the base parameters; syfafterzy/PCB_RPP_for_reID
  ``RPP.py``: "for pretrained parameters it is 10 times smaller").
- ``optim.rpp_classifier_only_epochs``: RPP's induced training (Sun et al., Sec. 3.3):
  for the first E epochs only the part classifier (``rpp_classifier``) moves; every other
  parameter, and its optimizer state (momentum, Adam moments), is held, so the full
  fine-tuning that follows starts from a clean optimizer state. The learning-rate schedule
  counts every step.
- ``optim.bias_lr_factor``: biases at this factor times the learning rate (fast-reid's
  ``SOLVER.BIAS_LR_FACTOR``, 2 in MetaBIN's config).

With the defaults (mult 1, no held epochs) the optimizer state has the same structure as
before these options existed, so older checkpoints still restore.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from reid_jax import errors

Schedule = Callable[..., jax.Array]  # lr(step, epoch=None)


def schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int, num_epochs: int) -> Schedule:
    """The learning rate ``lr(step, epoch=None)``: linear warmup from lr*warmup_factor, then
    multistep, cosine or constant.

    ``cfg.schedule_unit`` says what the schedule counts, as the reference's scheduler:
    'step' (fast-reid, MetaBIN: ``scheduler.step()`` every iteration; epochs are
    ``steps_per_epoch`` steps) or 'epoch' (BoT, CAP, M3L, IANet, PPLR: once per epoch, so
    the rate is constant within an epoch and follows the epoch index whatever the epoch
    length; ``schedule_epoch_offset`` 1 where the reference steps its scheduler at the
    start of each epoch, so epoch 0 already trains at the rate of ``last_epoch = 1``).
    ``epoch`` is the epoch being trained (the run loop keeps it in the state); None
    derives it from ``step``.
    """
    total = max(1, num_epochs * steps_per_epoch)
    per_epoch = cfg.schedule_unit == "epoch"
    unit = 1 if per_epoch else steps_per_epoch  # steps of the schedule's counter per epoch
    warmup = cfg.warmup_epochs * unit
    milestones = jnp.asarray([m * unit for m in cfg.milestones] or [jnp.inf], jnp.float32)
    length = max(1.0, (num_epochs if per_epoch else total) - warmup)

    def lr(step: jax.Array, epoch: jax.Array | None = None) -> jax.Array:
        if per_epoch:
            e = step // steps_per_epoch if epoch is None else epoch
            t = jnp.asarray(e, jnp.float32) + cfg.schedule_epoch_offset
        else:
            t = jnp.asarray(step, jnp.float32)
        if cfg.schedule == "multistep":
            main = cfg.lr * cfg.gamma ** jnp.sum(t >= milestones)
        elif cfg.schedule == "inv":  # Caffe's lr_policy "inv" (IDLA, Ahmed et al. Sec. 6)
            main = cfg.lr * (1.0 + cfg.inv_gamma * jnp.maximum(t - warmup, 0.0)) ** (-cfg.inv_power)
        elif cfg.schedule == "cosine":
            frac = jnp.clip((t - warmup) / length, 0.0, 1.0)
            main = cfg.lr * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
        else:
            main = jnp.asarray(cfg.lr, jnp.float32)
        if warmup <= 0:
            return main
        alpha = jnp.minimum(t / warmup, 1.0)
        return jnp.where(t < warmup, main * (cfg.warmup_factor * (1.0 - alpha) + alpha), main)

    return lr


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_lr`: updates seen."""

    count: jax.Array


def scale_by_lr(lr_fn: Schedule) -> optax.GradientTransformationExtraArgs:
    """Scales updates by ``-lr_fn(count, epoch)``; ``epoch`` comes as an extra argument of
    ``update`` (``TrainState.apply_gradients`` passes the state's epoch), else from count."""

    def init(params: Any) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(jnp.zeros([], jnp.int32))

    def update(updates: Any, state: ScaleByScheduleState, params: Any = None,
               epoch: jax.Array | None = None, **extra: Any) -> tuple[Any, ScaleByScheduleState]:
        del params, extra
        lr = lr_fn(state.count, epoch)
        updates = jax.tree.map(lambda u: (-lr * u).astype(u.dtype), updates)
        return updates, ScaleByScheduleState(optax.safe_int32_increment(state.count))

    return optax.GradientTransformationExtraArgs(init, update)


def _path_str(path: tuple) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


# Submodule names in the zoo models' parameter trees (reid_jax/models/zoo.py, parts.py).
BACKBONE = "backbone"
PART_CLASSIFIER = "rpp_classifier"


def param_labels(
    params: Any, split_backbone: bool = False, split_part_classifier: bool = False,
    split_bias: bool = False, top: str = "",
) -> Any:
    """The optimizer group of each parameter leaf.

    Args:
      params: the trainer's parameter tree ({'model': ..., 'center_loss': ...}).
      split_backbone: label ``<net>/backbone/...`` leaves 'backbone' (else 'model').
      split_part_classifier: label leaves under ``rpp_classifier`` 'part_classifier'.
      split_bias: add '_bias' to the label of leaves named 'bias' (their own lr factor).
      top: label leaves under this module 'top' (trained alone in a last phase).

    Returns:
      A tree of 'centers', 'frozen' (BNNeck bias), 'backbone', 'part_classifier' or
      'model' (the last three with '_bias' for biases when ``split_bias``).
    """

    def label(path: tuple, _: Any) -> str:
        s = _path_str(path)
        if s.startswith("center_loss"):
            return "centers"
        if "bnneck" in s and s.endswith("bias"):
            return "frozen"
        names = s.split("/")
        if split_part_classifier and PART_CLASSIFIER in names:
            group = "part_classifier"
        elif top and top in names:
            group = "top"
        elif split_backbone and len(names) > 1 and names[1] == BACKBONE:
            group = "backbone"
        else:
            group = "model"
        return group + "_bias" if split_bias and names[-1] == "bias" else group

    return jax.tree_util.tree_map_with_path(label, params)


class HoldState(NamedTuple):
    """State of :func:`hold_for`: steps seen, and the wrapped transform's state."""

    count: jax.Array
    inner: optax.OptState


def hold_for(inner: optax.GradientTransformation, num_steps: int,
             from_step: int | None = None) -> optax.GradientTransformation:
    """``inner``, except that its first ``num_steps`` updates (or, with ``from_step``,
    every update from that step on) are zero and leave its state.

    The parameters it handles stay where they are and its momentum/moments stay at their
    values while held (gradients seen then are discarded, not accumulated).
    """

    def init(params: Any) -> HoldState:
        return HoldState(jnp.zeros([], jnp.int32), inner.init(params))

    def update(updates: Any, state: HoldState, params: Any = None, **extra: Any) -> tuple[Any, HoldState]:
        new_updates, new_inner = optax.with_extra_args_support(inner).update(
            updates, state.inner, params, **extra)
        held = state.count < num_steps if from_step is None else state.count >= from_step
        new_updates = jax.tree.map(lambda u: jnp.where(held, jnp.zeros_like(u), u), new_updates)
        new_inner = jax.tree.map(lambda n, o: jnp.where(held, o, n), new_inner, state.inner)
        return new_updates, HoldState(optax.safe_int32_increment(state.count), new_inner)

    return optax.GradientTransformationExtraArgs(init, update)


def decay_mask(params: Any, decay_norm_and_bias: bool) -> Any:
    """True where weight decay applies: kernels always; norm scales and biases if asked."""

    def mask(path: tuple, leaf: Any) -> bool:
        return decay_norm_and_bias or leaf.ndim > 1

    return jax.tree_util.tree_map_with_path(mask, params)


def make_optimizer(
    cfg: ml_collections.ConfigDict,
    params: Any,
    steps_per_epoch: int,
    num_epochs: int,
    center_weight: float = 0.0,
    center_lr: float = 0.5,
    top_only_from: tuple[str, int] | None = None,
) -> tuple[optax.GradientTransformationExtraArgs, Schedule]:
    """Builds the optax transform for the whole parameter tree.

    ``top_only_from=(module, step)``: from ``step`` on only the parameters under
    ``module`` move (IDLA's hard-negative phase retrains its top layer only); the others
    and their momentum are held.

    Returns:
      (transform, learning-rate schedule ``lr(step, epoch=None)``); the transform's
      ``update`` takes the epoch as an extra argument (``epoch=``).
    """
    lr = schedule(cfg, steps_per_epoch, num_epochs)
    mult = float(cfg.backbone_lr_mult)
    held_steps = int(cfg.rpp_classifier_only_epochs * steps_per_epoch)

    def model_tx(scale: float = 1.0, hold: int = 0,
                 hold_from: int | None = None) -> optax.GradientTransformation:
        # A callable mask: inside multi_transform the tree it sees has the other labels masked out.
        wd = optax.add_decayed_weights(
            cfg.weight_decay, mask=lambda p: decay_mask(p, cfg.decay_norm_and_bias)
        )
        if cfg.name == "adam":
            moments = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)
        else:
            moments = optax.trace(decay=cfg.momentum, nesterov=cfg.nesterov)
        # (wd, moments, lr) flat; held: (hold(wd, moments), lr), the schedule outside the
        # hold so that it counts the held steps too.
        if hold > 0 or hold_from is not None:
            parts = [hold_for(optax.chain(wd, moments), hold, hold_from)]
        else:
            parts = [wd, moments]
        parts.append(scale_by_lr(lr))
        if scale != 1.0:
            parts.append(optax.scale(scale))
        return optax.chain(*parts)

    split_bias = cfg.bias_lr_factor != 1.0
    labels = param_labels(params, split_backbone=mult != 1.0,
                          split_part_classifier=held_steps > 0, split_bias=split_bias,
                          top=top_only_from[0] if top_only_from else "")
    present = set(jax.tree.leaves(labels))
    if held_steps > 0 and "part_classifier" not in present | {"part_classifier_bias"}:
        raise errors.ReidError(
            "optim.rpp_classifier_only_epochs > 0 trains only the RPP part classifier, "
            "but the model has none: set model.rpp=True (with model.head='pcb')."
        )
    # Only groups in use get a transform: the default optimizer state keeps its structure.
    scales = {"model": 1.0, "backbone": mult, "part_classifier": 1.0, "top": 1.0}
    holds = {"model": held_steps, "backbone": held_steps, "part_classifier": 0, "top": 0}
    hold_from = top_only_from[1] if top_only_from else None
    transforms = {"frozen": optax.set_to_zero()}
    for group in ("model", "backbone", "part_classifier", "top"):
        for suffix, factor in (("", 1.0), ("_bias", cfg.bias_lr_factor)):
            if group == "model" and not suffix or group + suffix in present:
                transforms[group + suffix] = model_tx(
                    scales[group] * factor, holds[group], None if group == "top" else hold_from)
    if center_weight > 0:
        transforms["centers"] = optax.chain(optax.scale(1.0 / center_weight), optax.sgd(center_lr))
    else:
        transforms["centers"] = optax.set_to_zero()
    tx = optax.multi_transform(transforms, labels)
    if cfg.grad_clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
    return optax.with_extra_args_support(tx), lr
