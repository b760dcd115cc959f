"""Optimizers and learning-rate schedules from config.optim.

- Adam (with L2 weight decay added to the gradient, as PyTorch's Adam(weight_decay=...) that
  BoT uses) or SGD with momentum.
- Linear warmup, then multistep or cosine decay; schedules are per step, derived from epochs.
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

With the defaults (mult 1, no held epochs) the optimizer state has the same structure as
before these options existed, so older checkpoints still restore.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from reid_jax import errors


def schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int, num_epochs: int) -> optax.Schedule:
    """Per-step learning rate: linear warmup from lr*warmup_factor, then multistep or cosine."""
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    total = max(1, num_epochs * steps_per_epoch)
    if cfg.schedule == "multistep":
        boundaries = {int(m * steps_per_epoch): cfg.gamma for m in cfg.milestones}
        main = optax.piecewise_constant_schedule(cfg.lr, boundaries)
    elif cfg.schedule == "cosine":
        main = lambda step: optax.cosine_decay_schedule(cfg.lr, max(1, total - warmup))(  # noqa: E731
            step - warmup
        )
    elif cfg.schedule == "constant":
        main = optax.constant_schedule(cfg.lr)
    else:
        raise errors.ReidError(
            f"unknown optim.schedule {cfg.schedule!r}; choose multistep, cosine or constant."
        )
    if warmup == 0:
        return main

    def lr(step: jax.Array) -> jax.Array:
        frac = step / warmup
        warm = cfg.lr * (cfg.warmup_factor + (1.0 - cfg.warmup_factor) * frac)
        return jax.numpy.where(step < warmup, warm, main(step))

    return lr


def _path_str(path: tuple) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


# Submodule names in the zoo models' parameter trees (reid_jax/models/zoo.py, parts.py).
BACKBONE = "backbone"
PART_CLASSIFIER = "rpp_classifier"


def param_labels(
    params: Any, split_backbone: bool = False, split_part_classifier: bool = False
) -> Any:
    """The optimizer group of each parameter leaf.

    Args:
      params: the trainer's parameter tree ({'model': ..., 'center_loss': ...}).
      split_backbone: label ``<net>/backbone/...`` leaves 'backbone' (else 'model').
      split_part_classifier: label leaves under ``rpp_classifier`` 'part_classifier'.

    Returns:
      A tree of 'centers', 'frozen' (BNNeck bias), 'backbone', 'part_classifier' or 'model'.
    """

    def label(path: tuple, _: Any) -> str:
        s = _path_str(path)
        if s.startswith("center_loss"):
            return "centers"
        if "bnneck" in s and s.endswith("bias"):
            return "frozen"
        names = s.split("/")
        if split_part_classifier and PART_CLASSIFIER in names:
            return "part_classifier"
        if split_backbone and len(names) > 1 and names[1] == BACKBONE:
            return "backbone"
        return "model"

    return jax.tree_util.tree_map_with_path(label, params)


class HoldState(NamedTuple):
    """State of :func:`hold_for`: steps seen, and the wrapped transform's state."""

    count: jax.Array
    inner: optax.OptState


def hold_for(inner: optax.GradientTransformation, num_steps: int) -> optax.GradientTransformation:
    """``inner``, except that its first ``num_steps`` updates are zero and leave its state.

    The parameters it handles stay where they are and its momentum/moments stay at their
    initial values while held (gradients seen then are discarded, not accumulated).
    """

    def init(params: Any) -> HoldState:
        return HoldState(jnp.zeros([], jnp.int32), inner.init(params))

    def update(updates: Any, state: HoldState, params: Any = None) -> tuple[Any, HoldState]:
        new_updates, new_inner = inner.update(updates, state.inner, params)
        held = state.count < num_steps
        new_updates = jax.tree.map(lambda u: jnp.where(held, jnp.zeros_like(u), u), new_updates)
        new_inner = jax.tree.map(lambda n, o: jnp.where(held, o, n), new_inner, state.inner)
        return new_updates, HoldState(optax.safe_int32_increment(state.count), new_inner)

    return optax.GradientTransformation(init, update)


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
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Builds the optax transform for the whole parameter tree.

    Optional keys of ``cfg`` (read with defaults): ``backbone_lr_mult`` (1.0),
    ``rpp_classifier_only_epochs`` (0), ``nesterov`` (False), ``grad_clip`` (0).

    Returns:
      (transform, learning-rate schedule).
    """
    lr = schedule(cfg, steps_per_epoch, num_epochs)
    mult = float(cfg.get("backbone_lr_mult", 1.0))
    held_steps = int(cfg.get("rpp_classifier_only_epochs", 0) * steps_per_epoch)
    if cfg.name not in ("adam", "sgd"):
        raise errors.ReidError(f"unknown optim.name {cfg.name!r}; choose adam or sgd.")

    def model_tx(scale: float = 1.0, hold: int = 0) -> optax.GradientTransformation:
        # A callable mask: inside multi_transform the tree it sees has the other labels masked out.
        wd = optax.add_decayed_weights(
            cfg.weight_decay, mask=lambda p: decay_mask(p, cfg.decay_norm_and_bias)
        )
        if cfg.name == "adam":
            moments = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)
        else:
            moments = optax.trace(decay=cfg.momentum, nesterov=cfg.get("nesterov", False))
        # (wd, moments, lr) flat as before; held: (hold(wd, moments), lr), the schedule
        # outside the hold so that it counts the held steps too.
        parts = [hold_for(optax.chain(wd, moments), hold)] if hold > 0 else [wd, moments]
        parts.append(optax.scale_by_learning_rate(lr))
        if scale != 1.0:
            parts.append(optax.scale(scale))
        return optax.chain(*parts)

    labels = param_labels(params, split_backbone=mult != 1.0, split_part_classifier=held_steps > 0)
    present = set(jax.tree.leaves(labels))
    # Only groups in use get a transform: the default optimizer state keeps its old structure.
    transforms = {"model": model_tx(hold=held_steps), "frozen": optax.set_to_zero()}
    if "backbone" in present:
        transforms["backbone"] = model_tx(mult, hold=held_steps)
    if held_steps > 0:
        if "part_classifier" not in present:
            raise errors.ReidError(
                "optim.rpp_classifier_only_epochs > 0 trains only the RPP part classifier, "
                "but the model has none: set model.rpp=True (with model.head='pcb')."
            )
        transforms["part_classifier"] = model_tx()
    if center_weight > 0:
        transforms["centers"] = optax.chain(optax.scale(1.0 / center_weight), optax.sgd(center_lr))
    else:
        transforms["centers"] = optax.set_to_zero()
    tx = optax.multi_transform(transforms, labels)
    if cfg.get("grad_clip", 0.0) > 0:
        tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
    return tx, lr
