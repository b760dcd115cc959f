"""Optimizers and learning-rate schedules from config.optim.

- Adam (with L2 weight decay added to the gradient, as PyTorch's Adam(weight_decay=...) that
  BoT uses) or SGD with momentum.
- Linear warmup, then multistep or cosine decay; schedules are per step, derived from epochs.
- Masks (``optax.multi_transform``): the BNNeck BatchNorm bias is frozen (BoT, Luo et al.
  2019: ``bias.requires_grad_(False)``); the center-loss centres get their own SGD with
  lr 0.5 on gradients rescaled by 1/center_weight (BoT's train loop does
  ``param.grad *= 1 / CENTER_LOSS_WEIGHT`` before its center optimizer step); weight decay
  can skip BatchNorm parameters and biases.
"""

from __future__ import annotations

from typing import Any

import jax
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


def param_labels(params: Any) -> Any:
    """'centers', 'frozen' (BNNeck bias) or 'model' for each parameter leaf."""

    def label(path: tuple, _: Any) -> str:
        s = _path_str(path)
        if s.startswith("center_loss"):
            return "centers"
        if "bnneck" in s and s.endswith("bias"):
            return "frozen"
        return "model"

    return jax.tree_util.tree_map_with_path(label, params)


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

    Returns:
      (transform, learning-rate schedule).
    """
    lr = schedule(cfg, steps_per_epoch, num_epochs)
    # A callable mask: inside multi_transform the tree it sees has the other labels masked out.
    wd = optax.add_decayed_weights(
        cfg.weight_decay, mask=lambda p: decay_mask(p, cfg.decay_norm_and_bias)
    )
    if cfg.name == "adam":
        model_tx = optax.chain(wd, optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8), optax.scale_by_learning_rate(lr))
    elif cfg.name == "sgd":
        model_tx = optax.chain(
            wd, optax.trace(decay=cfg.momentum, nesterov=cfg.get("nesterov", False)),
            optax.scale_by_learning_rate(lr),
        )
    else:
        raise errors.ReidError(f"unknown optim.name {cfg.name!r}; choose adam or sgd.")
    transforms = {"model": model_tx, "frozen": optax.set_to_zero()}
    if center_weight > 0:
        transforms["centers"] = optax.chain(optax.scale(1.0 / center_weight), optax.sgd(center_lr))
    else:
        transforms["centers"] = optax.set_to_zero()
    tx = optax.multi_transform(transforms, param_labels(params))
    if cfg.get("grad_clip", 0.0) > 0:
        tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
    return tx, lr
