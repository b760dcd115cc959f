"""The training-mode forward every trainer uses: BatchNorm over the batch or over groups.

The reference implementations train with ``nn.DataParallel`` on several GPUs, so each
BatchNorm normalised over its replica's share of the batch (64 of 256 pictures in
cluster contrast's 4-GPU runs; users report 59.1 mAP on 1 GPU vs 82.6 on 4 on
Market-1501). ``train.bn_group_size`` makes that grouping a property of the config,
not of the hardware: the global batch [N, ...] is reshaped to [G, N / G, ...]
(consecutive pictures, as DataParallel's scatter splits it) and the forward is
``jax.vmap``-ed over G with the parameters shared, so every BatchNorm sees only its
group, on any number of devices. The new running statistics are the mean of the G
groups' (DataParallel keeps replica 0's).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from reid_jax import config_schema, errors
from reid_jax.data import augment


def apply_train(
    model: nn.Module,
    params: Any,
    batch_stats: Any,
    images: jax.Array,
    bn_group_size: int = 0,
    rng: jax.Array | None = None,
    **kwargs: Any,
) -> tuple[dict, Any]:
    """Training-mode ``model.apply`` with BatchNorm statistics per group.

    Args:
      model: the network.
      params: its parameters.
      batch_stats: its running statistics.
      images: [N, H, W, 3] normalised pictures.
      bn_group_size: pictures per BatchNorm group; 0 or >= N: the whole batch.
      rng: key of the model's dropout layers (PCB), if any.
      **kwargs: passed to the model (M3L's MetaBN mixing arguments).

    Returns:
      (outputs with the batch axis restored, new batch_stats).
    """
    variables = {"params": params, "batch_stats": batch_stats}
    n = images.shape[0]

    def apply(x: jax.Array, key: jax.Array | None) -> tuple[dict, Any]:
        rngs = {"dropout": key} if key is not None else None
        return model.apply(variables, x, train=True, mutable=["batch_stats"], rngs=rngs, **kwargs)

    if not bn_group_size or bn_group_size >= n:
        out, new_vars = apply(images, rng)
        return out, new_vars["batch_stats"]
    groups = n // bn_group_size
    x = images.reshape(groups, bn_group_size, *images.shape[1:])
    keys = jax.random.split(rng, groups) if rng is not None else None
    out, new_vars = jax.vmap(apply)(x, keys)
    # Outputs per picture, or per clip for a video network: the groups' rows, in order.
    out = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), out)
    return out, jax.tree.map(lambda a: jnp.mean(a, axis=0), new_vars["batch_stats"])


def compose_running_stats(old: Any, news: Any, momentum: float) -> Any:
    """Running statistics after several training forwards taken one after the other.

    Each forward's new statistics were computed from ``old`` (``new_i = m old + (1 - m)
    b_i``, Flax's momentum ``m``); in sequence they would give ``m^n old + sum_i m^(n-i)
    (1 - m) b_i``. Lets a step run the forwards in parallel (``vmap``) and still keep the
    statistics of a reference that runs them in a loop (M3L: the meta-train domains, then
    the memory forwards of every domain).

    Args:
      old: the statistics before the forwards.
      news: the same tree with a leading axis [n]: each forward's new statistics, in order.
      momentum: Flax's BatchNorm momentum (0.9 = PyTorch's 0.1).
    """

    def one(o: jax.Array, n: jax.Array) -> jax.Array:
        count = n.shape[0]
        weights = momentum ** jnp.arange(count - 1, -1, -1, dtype=o.dtype)  # m^(n-i)
        contrib = n - momentum * o  # (1 - m) b_i
        return momentum**count * o + jnp.tensordot(weights, contrib, axes=1)

    return jax.tree.map(one, old, news)


def check_bn_groups(config: ml_collections.ConfigDict, batch: int) -> None:
    """Raises ReidError unless ``train.bn_group_size`` divides the batch of ``batch``."""
    g = config.train.bn_group_size
    if g and (g < 2 or batch % g):
        raise errors.ReidError(
            f"config.train.bn_group_size = {g} must be >= 2 and divide the batch of {batch} "
            "pictures; change it or data.p / data.k."
        )


@dataclasses.dataclass(frozen=True)
class Forward:
    """A trainer's training-time forward: in-step augmentation and grouped BatchNorm.

    Attributes:
      model: the network.
      aug: config.aug as a dict (``reid_jax/data/augment.py``).
      bn_group_size: ``train.bn_group_size``.
      clip_len: video networks: frames per clip (the batch holds clips folded frame by
        frame, augmented clip by clip and passed to the model as ``clip_len``); 0 for
        picture networks.
    """

    model: nn.Module
    aug: dict
    bn_group_size: int = 0
    clip_len: int = 0

    @classmethod
    def from_config(cls, model: nn.Module, config: ml_collections.ConfigDict) -> Forward:
        """The forward of ``model`` as ``config.aug`` and ``config.train`` say."""
        clip_len = config.data.clip_len if config.model.name in config_schema.VIDEO_MODELS else 0
        return cls(model, config.aug.to_dict(), config.train.bn_group_size, clip_len)

    def augment(self, rng: jax.Array, step: jax.Array, images: jax.Array) -> jax.Array:
        """The batch's augmented, normalised pictures, from the step's own key."""
        return augment.augment_batch(jax.random.fold_in(rng, step), images, self.aug,
                                     max(1, self.clip_len))

    def __call__(
        self, params: Any, batch_stats: Any, images: jax.Array, rng: jax.Array | None = None,
        **kwargs: Any,
    ) -> tuple[dict, Any]:
        """``apply_train`` with this forward's BatchNorm groups (``rng``: dropout key)."""
        if self.clip_len:
            kwargs = {"clip_len": self.clip_len, **kwargs}
        return apply_train(self.model, params, batch_stats, images, self.bn_group_size, rng,
                           **kwargs)
