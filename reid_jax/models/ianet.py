"""Interaction-and-Aggregation network (IANet).

Hou, Ma, Chang, Gu, Shan and Chen, "Interaction-and-Aggregation Network for Person
Re-identification", CVPR 2019. An IA block is a spatial IA (SIA) module followed by a
channel IA (CIA) module, each a residual z = x + BN(y) with the BatchNorm scale and
bias initialised to 0 (so a new block is the identity):

- SIA: y_i = sum_j w_ij x_j, where w is built from a semantic relation (softmax over j
  of x_i . x_j / sqrt(C)) and a location relation (softmax over j of a Gaussian of the
  offset, -dx^2 / (2 a_x^2) - dy^2 / (2 a_y^2)). The official code
  (blue-blue272/ImgReID-IAnet, `models/IA.py`) multiplies the two maps element-wise
  and applies a softmax to the product; we follow it. (The product of two
  distributions is small, so that last softmax is close to uniform; it is what the
  published numbers were trained with.) The relation is computed on the raw features,
  without embedding convolutions, as there.
- Patch relation (`patch` = K): the semantic relation may compare the K x K
  neighbourhoods of i and j (zero padded, concatenated over the patch) instead of
  single positions, for robustness to small misalignment. K = 1 is the official code.
- CIA: y_c = sum_c' softmax_c'(x_c . x_c') x_c' over the channel maps (flattened over
  positions), unscaled as in the official code.

Placement (official `IAResNet50_location`): one IA block after the last residual block
of stage 2 (map 32x16 for a 256x128 input, a_x = 10, a_y = 20) and of stage 3 (16x8,
a_x = 5, a_y = 10). Those widths are 0.625 of the map's width and height, which is how
we scale them to other input sizes (`SIGMA_RATIO`).

`IAResNet` is the `reid_jax.models.resnet.ResNet` trunk (same blocks and parameter
names, so torchvision weights load the same way) with the IA blocks inserted; the IA
blocks are named `IA_{stage}` with 1-based stages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from reid_jax.models import pooling, resnet

# Official IAResNet50_location: alpha_x = 10, alpha_y = 20 on 32x16 maps, 5 / 10 on 16x8:
# 0.625 of the map's width / height in both stages.
SIGMA_RATIO = 0.625
# IA blocks after stages 2 and 3 (1-based), official `IA_idx=[3]` / `[5]` = last blocks.
IA_STAGES = (2, 3)


def location_prior(height: int, width: int, sigma_y: float, sigma_x: float) -> jax.Array:
    """Gaussian location relation between all positions of an H x W map.

    Args:
        height: H.
        width: W.
        sigma_y: vertical width a_y (in positions).
        sigma_x: horizontal width a_x.

    Returns:
        [H*W, H*W] float32, row i = softmax_j(-(dx^2 / (2 a_x^2) + dy^2 / (2 a_y^2)))
        with positions flattened row-major (index = y * W + x).
    """
    ys, xs = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
    ys, xs = ys.reshape(-1).astype(jnp.float32), xs.reshape(-1).astype(jnp.float32)
    d = (xs[:, None] - xs[None, :]) ** 2 / (2 * sigma_x**2) + (
        ys[:, None] - ys[None, :]
    ) ** 2 / (2 * sigma_y**2)
    return jax.nn.softmax(-d, axis=-1)


def patch_features(x: jax.Array, patch: int) -> jax.Array:
    """Concatenates each position's K x K neighbourhood (zero padded).

    Args:
        x: [B, H, W, C].
        patch: K, odd.

    Returns:
        [B, H, W, K*K*C], neighbours ordered row-major (dy, dx) with channels last.
    """
    if patch == 1:
        return x
    if patch % 2 == 0:
        raise ValueError(f"IA patch size must be odd, got {patch}")
    r = patch // 2
    height, width = x.shape[1], x.shape[2]
    padded = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)))
    shifted = [
        padded[:, dy : dy + height, dx : dx + width] for dy in range(patch) for dx in range(patch)
    ]
    return jnp.concatenate(shifted, axis=-1)


def sia_relation(x: jax.Array, patch: int = 1, sigma_ratio: float = SIGMA_RATIO) -> jax.Array:
    """The SIA aggregation weights of every position over every position.

    Args:
        x: [B, H, W, C] feature map.
        patch: K of the patch relation (1: single positions, the official code).
        sigma_ratio: Gaussian widths as a fraction of the map's height and width.

    Returns:
        [B, H*W, H*W] float32 rows summing to 1:
        softmax_j(softmax_j(q_i . q_j / sqrt(dim q)) * location_ij), q the patch features.
    """
    batch, height, width, _ = x.shape
    q = patch_features(jnp.asarray(x, jnp.float32), patch).reshape(batch, height * width, -1)
    semantic = jax.nn.softmax(q @ jnp.swapaxes(q, 1, 2) / math.sqrt(q.shape[-1]), axis=-1)
    loc = location_prior(height, width, sigma_ratio * height, sigma_ratio * width)
    return jax.nn.softmax(semantic * loc[None], axis=-1)


def cia_relation(x: jax.Array) -> jax.Array:
    """The CIA aggregation weights between channels.

    Args:
        x: [B, H, W, C] feature map.

    Returns:
        [B, C, C] float32, row c = softmax_c'(sum_p x_pc x_pc').
    """
    batch, height, width, channels = x.shape
    flat = jnp.asarray(x, jnp.float32).reshape(batch, height * width, channels)
    return jax.nn.softmax(jnp.swapaxes(flat, 1, 2) @ flat, axis=-1)


def _zero_bn(train: bool, dtype: Any, name: str) -> nn.BatchNorm:
    # Official IA.py: W1/W2 BatchNorm weight and bias set to 0.
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=resnet.BN_MOMENTUM,
        epsilon=resnet.BN_EPS,
        scale_init=nn.initializers.zeros,
        dtype=dtype,
        name=name,
    )


class IABlock(nn.Module):
    """SIA followed by CIA, each residual through a zero-initialised BatchNorm.

    Attributes:
        patch: K of the SIA patch relation.
        sigma_ratio: Gaussian location widths relative to the map size.
        dtype: compute dtype of the BatchNorms (relations are float32).
    """

    patch: int = 1
    sigma_ratio: float = SIGMA_RATIO
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Applies SIA then CIA.

        Args:
            x: feature map [B, H, W, C].
            train: training mode for the BatchNorms.

        Returns:
            Same shape and dtype as x.
        """
        batch, height, width, channels = x.shape
        flat = jnp.asarray(x, jnp.float32).reshape(batch, height * width, channels)
        y = sia_relation(x, self.patch, self.sigma_ratio) @ flat
        y = _zero_bn(train, self.dtype, "sia_bn")(y.reshape(x.shape).astype(x.dtype))
        x = x + y
        flat = jnp.asarray(x, jnp.float32).reshape(batch, height * width, channels)
        y = flat @ jnp.swapaxes(cia_relation(x), 1, 2)
        y = _zero_bn(train, self.dtype, "cia_bn")(y.reshape(x.shape).astype(x.dtype))
        return x + y


class IAResNet(nn.Module):
    """ResNet trunk with IA blocks after the last block of the chosen stages.

    Attributes:
        stage_sizes: blocks per stage (4 entries).
        block: 'basic' or 'bottleneck'.
        width: stem / stage-1 channels.
        last_stride: stride of stage 4.
        dtype: compute dtype.
        norm: 'bn', 'ibn_a' or 'ibn_b' (as `resnet.ResNet`).
        ia_stages: 1-based stages followed by an IA block ((2, 3) as published).
        ia_patch: K of the SIA patch relation.
        sigma_ratio: Gaussian location widths relative to the map size.
        stem_relu: ReLU after the stem's norm (as `resnet.ResNet`).
    """

    stage_sizes: Sequence[int]
    block: str
    width: int = 64
    last_stride: int = 1
    dtype: Any = jnp.float32
    norm: str = "bn"
    ia_stages: Sequence[int] = IA_STAGES
    ia_patch: int = 1
    sigma_ratio: float = SIGMA_RATIO
    stem_relu: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Computes the final feature map.

        Args:
            x: images [N, H, W, 3], already normalised.
            train: training mode for BatchNorm.

        Returns:
            Feature map as `resnet.ResNet`.
        """
        if self.norm not in ("bn", "ibn_a", "ibn_b"):
            raise ValueError(f"IANet supports norm 'bn', 'ibn_a', 'ibn_b', got {self.norm!r}")
        if any(s not in (1, 2, 3, 4) for s in self.ia_stages):
            raise ValueError(f"ia_stages are 1-based stage numbers, got {self.ia_stages}")
        block_cls = resnet.BLOCKS[self.block]
        x = nn.Conv(
            self.width, (7, 7), strides=(2, 2), padding=((3, 3), (3, 3)), use_bias=False,
            kernel_init=resnet.conv_init, dtype=self.dtype, name="conv1",
        )(jnp.asarray(x, self.dtype))
        if self.norm == "ibn_b":
            x = nn.InstanceNorm(epsilon=resnet.IN_EPS, dtype=self.dtype, name="bn1")(x)
        else:
            x = nn.BatchNorm(
                use_running_average=not train, momentum=resnet.BN_MOMENTUM,
                epsilon=resnet.BN_EPS, dtype=self.dtype, name="bn1",
            )(x)
        if self.stem_relu:
            x = nn.relu(x)
        x = pooling.max_pool(x, 3, 2, 1)
        for stage, num_blocks in enumerate(self.stage_sizes):
            stage_stride = 1 if stage == 0 else (self.last_stride if stage == 3 else 2)
            for index in range(num_blocks):
                ibn_a, ibn_b = resnet._block_norms(self.norm, stage, index, num_blocks)
                x = block_cls(
                    features=self.width * 2**stage,
                    strides=stage_stride if index == 0 else 1,
                    ibn_a=ibn_a,
                    ibn_b=ibn_b,
                    dtype=self.dtype,
                    name=f"layer{stage + 1}_{index}",
                )(x, train)
            if stage + 1 in self.ia_stages:
                x = IABlock(
                    patch=self.ia_patch, sigma_ratio=self.sigma_ratio, dtype=self.dtype,
                    name=f"IA_{stage + 1}",
                )(x, train)
        return x


def ia_resnet(name: str, /, **kwargs: Any) -> IAResNet:
    """Builds a named ResNet with IA blocks.

    Args:
        name: a key of `resnet.BACKBONES`.
        **kwargs: other `IAResNet` fields; `stage_sizes` None takes the named depth.

    Returns:
        The (unbound) IAResNet.
    """
    if name not in resnet.BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {list(resnet.BACKBONES)}")
    stage_sizes, block = resnet.BACKBONES[name]
    if kwargs.get("stage_sizes") is None:
        kwargs["stage_sizes"] = stage_sizes
    return IAResNet(block=block, **kwargs)
