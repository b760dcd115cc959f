"""ResNet backbones for re-identification (Flax Linen).

Architecture: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
in the torchvision layout ("ResNet v1.5": the stride of a bottleneck block sits on its
3x3 convolution), so that torchvision ImageNet weights map one to one onto this tree
(see `reid_jax/models/load_torch.py`).

Re-ID specifics:
- `last_stride=1` removes the down-sampling of stage 4 (Luo et al., "Bag of Tricks and
  a Strong Baseline for Deep Person Re-identification", CVPRW 2019: "last stride"),
  doubling the final map to 16x8 for a 256x128 input.
- Conv weights use Kaiming-normal fan_out (torchvision `ResNet.__init__`); BatchNorm
  uses momentum 0.9 and eps 1e-5, i.e. PyTorch's `momentum=0.1, eps=1e-5` (Flax keeps
  `momentum` of the old running average, PyTorch the weight of the new batch).
- `norm` selects plain BatchNorm ('bn') or the IBN-Net variants ('ibn_a', 'ibn_b'),
  Pan et al., "Two at Once: Enhancing Learning and Generalization Capacities via
  IBN-Net", ECCV 2018; the placement follows the official code (XingangPan/IBN-Net,
  `ibnnet/resnet_ibn.py`), see `_block_norms`.
- `non_local` inserts non-local blocks after the last blocks of each stage (AGW, see
  `reid_jax/models/non_local.py`); they are named `NL_{stage}_{k}`.

Parameter names mirror torchvision: `conv1`, `bn1`, `layer{1..4}_{j}` with `conv{k}`,
`bn{k}`, `downsample_conv`, `downsample_bn` inside each block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from reid_jax.models import bin as bin_lib
from reid_jax.models import non_local as nl_block
from reid_jax.models import pooling

# torchvision: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu") draws an
# untruncated normal with variance 2 / fan_out.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

# PyTorch BatchNorm2d defaults: momentum=0.1 (weight of the new batch) and eps=1e-5.
BN_MOMENTUM = 0.9
BN_EPS = 1e-5
# PyTorch InstanceNorm2d default eps (used by IBN-Net).
IN_EPS = 1e-5
# IBN-a splits the channels of the first norm of a block half/half (IBN-Net `IBN`,
# ratio=0.5): the first half goes through InstanceNorm, the rest through BatchNorm.
IBN_A_RATIO = 0.5

BACKBONES: dict[str, tuple[list[int], str]] = {
    "resnet18": ([2, 2, 2, 2], "basic"),
    "resnet34": ([3, 4, 6, 3], "basic"),
    "resnet50": ([3, 4, 6, 3], "bottleneck"),
    "resnet101": ([3, 4, 23, 3], "bottleneck"),
}

NORMS = ("bn", "ibn_a", "ibn_b", "bin")


class IBN(nn.Module):
    """IBN-a normalisation: InstanceNorm on the first channels, BatchNorm on the rest.

    Attributes:
        ratio: fraction of channels (rounded down) normalised by InstanceNorm.
        dtype: compute dtype.
    """

    ratio: float = IBN_A_RATIO
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Normalises `x` (NHWC).

        Args:
            x: feature map [N, H, W, C].
            train: use batch statistics (and update running ones) if True.

        Returns:
            The normalised map, same shape.
        """
        half = int(x.shape[-1] * self.ratio)
        x_in = nn.InstanceNorm(epsilon=IN_EPS, dtype=self.dtype, name="IN")(x[..., :half])
        x_bn = nn.BatchNorm(
            use_running_average=not train,
            momentum=BN_MOMENTUM,
            epsilon=BN_EPS,
            dtype=self.dtype,
            name="BN",
        )(x[..., half:])
        return jnp.concatenate([x_in, x_bn], axis=-1)


class _Block(nn.Module):
    """Shared fields and helpers of the residual blocks."""

    features: int
    strides: int = 1
    ibn_a: bool = False  # IBN-a split norm in place of bn1
    ibn_b: bool = False  # InstanceNorm after the residual sum
    bin: bool = False  # every BatchNorm becomes a gated BIN (MetaBIN, models/bin.py)
    dtype: Any = jnp.float32

    def _conv(self, features: int, kernel: int, strides: int, name: str) -> nn.Conv:
        pad = kernel // 2
        return nn.Conv(
            features,
            (kernel, kernel),
            strides=(strides, strides),
            padding=((pad, pad), (pad, pad)),
            use_bias=False,
            kernel_init=conv_init,
            dtype=self.dtype,
            name=name,
        )

    def _bn(self, train: bool, name: str) -> nn.Module:
        if self.bin:
            return bin_lib.BIN(use_running_average=not train, dtype=self.dtype, name=name)
        return nn.BatchNorm(
            use_running_average=not train,
            momentum=BN_MOMENTUM,
            epsilon=BN_EPS,
            dtype=self.dtype,
            name=name,
        )

    def _first_norm(self, x: jax.Array, train: bool) -> jax.Array:
        if self.ibn_a:
            return IBN(dtype=self.dtype, name="bn1")(x, train)
        return self._bn(train, "bn1")(x)

    def _shortcut_and_sum(self, x: jax.Array, y: jax.Array, train: bool) -> jax.Array:
        if x.shape != y.shape:
            x = self._conv(y.shape[-1], 1, self.strides, "downsample_conv")(x)
            x = self._bn(train, "downsample_bn")(x)
        y = x + y
        if self.ibn_b:
            y = nn.InstanceNorm(epsilon=IN_EPS, dtype=self.dtype, name="IN")(y)
        return nn.relu(y)


class BasicBlock(_Block):
    """Two 3x3 convolutions (ResNet-18/34)."""

    expansion = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Applies the block.

        Args:
            x: input map [N, H, W, C].
            train: training mode for BatchNorm.

        Returns:
            Output map [N, H/strides, W/strides, features].
        """
        y = self._conv(self.features, 3, self.strides, "conv1")(x)
        y = nn.relu(self._first_norm(y, train))
        y = self._conv(self.features, 3, 1, "conv2")(y)
        y = self._bn(train, "bn2")(y)
        return self._shortcut_and_sum(x, y, train)


class Bottleneck(_Block):
    """1x1 reduce, 3x3 (carrying the stride, torchvision v1.5), 1x1 expand by 4."""

    expansion = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Applies the block.

        Args:
            x: input map [N, H, W, C].
            train: training mode for BatchNorm.

        Returns:
            Output map [N, H/strides, W/strides, 4 * features].
        """
        y = self._conv(self.features, 1, 1, "conv1")(x)
        y = nn.relu(self._first_norm(y, train))
        y = self._conv(self.features, 3, self.strides, "conv2")(y)
        y = nn.relu(self._bn(train, "bn2")(y))
        y = self._conv(self.features * self.expansion, 1, 1, "conv3")(y)
        y = self._bn(train, "bn3")(y)
        return self._shortcut_and_sum(x, y, train)


BLOCKS: dict[str, type[_Block]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def _block_norms(norm: str, stage: int, index: int, num_blocks: int) -> tuple[bool, bool]:
    """Where IBN-Net puts instance normalisation (official `resnet_ibn.py`).

    IBN-a (`ibn_cfg=('a', 'a', 'a', None)`): every block of stages 1-3 splits its first
    norm. IBN-b (`ibn_cfg=('b', 'b', None, None)`): InstanceNorm after the residual sum
    in the *last* block of stages 1-2 only, plus an InstanceNorm stem (see `ResNet`).
    The official `_make_layer` never gives it to the first block of a stage
    (`None if ibn == 'b'`), so a one-block stage has none; we follow the code.

    Args:
        norm: 'bn', 'ibn_a' or 'ibn_b'.
        stage: stage index, 0-based.
        index: block index inside the stage, 0-based.
        num_blocks: number of blocks in the stage.

    Returns:
        (ibn_a, ibn_b) flags for the block.
    """
    ibn_a = norm == "ibn_a" and stage < 3
    ibn_b = norm == "ibn_b" and stage < 2 and index == num_blocks - 1 and index > 0
    return ibn_a, ibn_b


class ResNet(nn.Module):
    """ResNet trunk without the classifier; returns the stage-4 feature map.

    Attributes:
        stage_sizes: number of blocks in each of the 4 stages.
        block: 'basic' or 'bottleneck'.
        width: channels of the stem and of stage 1 (64 in the paper; small in tests).
        last_stride: stride of stage 4 (1 for re-ID, BoT; 2 for ImageNet).
        dtype: compute dtype; parameters stay float32.
        norm: 'bn', 'ibn_a' or 'ibn_b'.
        non_local: per stage, how many non-local blocks follow its last blocks
            (AGW: (0, 2, 3, 0)); capped at the stage's number of blocks.
        non_local_inter: embedding channels of those blocks (1 as the official AGW
            code, None for C // 2 as Wang et al.).
        stem_relu: ReLU after the stem's norm (torchvision). The ResNet-50 files of BoT,
            MMT, M3L, CAP and ReID-Survey leave it out ("add missed relu" commented out);
            ImageNet weights were trained with it.
    """

    stage_sizes: Sequence[int]
    block: str
    width: int = 64
    last_stride: int = 1
    dtype: Any = jnp.float32
    norm: str = "bn"
    non_local: Sequence[int] = (0, 0, 0, 0)
    non_local_inter: int | None = 1
    stem_relu: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Computes the final feature map.

        Args:
            x: images [N, H, W, 3], already normalised.
            train: training mode for BatchNorm (batch statistics, running-stat update).

        Returns:
            Feature map [N, H/16 or H/32, W/16 or W/32, C] in `dtype`, C = 8 * width
            (basic) or 32 * width (bottleneck).
        """
        if self.block not in BLOCKS:
            raise ValueError(f"unknown block {self.block!r}; expected one of {list(BLOCKS)}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; expected one of {NORMS}")
        if len(self.stage_sizes) != 4 or len(self.non_local) != 4:
            raise ValueError(
                f"stage_sizes and non_local need 4 entries, got {self.stage_sizes}, "
                f"{self.non_local}"
            )
        block_cls = BLOCKS[self.block]

        x = jnp.asarray(x, self.dtype)
        x = nn.Conv(
            self.width,
            (7, 7),
            strides=(2, 2),
            padding=((3, 3), (3, 3)),
            use_bias=False,
            kernel_init=conv_init,
            dtype=self.dtype,
            name="conv1",
        )(x)
        if self.norm == "ibn_b":
            # IBN-b: InstanceNorm (affine) in the stem (`ibn_cfg[0] == 'b'`).
            x = nn.InstanceNorm(epsilon=IN_EPS, dtype=self.dtype, name="bn1")(x)
        elif self.norm == "bin":
            x = bin_lib.BIN(use_running_average=not train, dtype=self.dtype, name="bn1")(x)
        else:
            x = nn.BatchNorm(
                use_running_average=not train,
                momentum=BN_MOMENTUM,
                epsilon=BN_EPS,
                dtype=self.dtype,
                name="bn1",
            )(x)
        if self.stem_relu:  # several reference ResNets leave it out (`stem_relu`)
            x = nn.relu(x)
        x = pooling.max_pool(x, 3, 2, 1)

        for stage, num_blocks in enumerate(self.stage_sizes):
            stage_stride = 1 if stage == 0 else (self.last_stride if stage == 3 else 2)
            for index in range(num_blocks):
                ibn_a, ibn_b = _block_norms(self.norm, stage, index, num_blocks)
                x = block_cls(
                    features=self.width * 2**stage,
                    strides=stage_stride if index == 0 else 1,
                    ibn_a=ibn_a,
                    ibn_b=ibn_b,
                    bin=self.norm == "bin",
                    dtype=self.dtype,
                    name=f"layer{stage + 1}_{index}",
                )(x, train)
                # AGW: a non-local block after each of the last `non_local[stage]` blocks.
                first_nl = num_blocks - min(self.non_local[stage], num_blocks)
                if index >= first_nl:
                    x = nl_block.NonLocal(
                        inter_channels=self.non_local_inter,
                        dtype=self.dtype,
                        name=f"NL_{stage + 1}_{index - first_nl}",
                    )(x, train)
        return x


def resnet(name: str, /, **kwargs: Any) -> ResNet:
    """Builds a named ResNet.

    Args:
        name: a key of `BACKBONES` ('resnet18', 'resnet34', 'resnet50', 'resnet101').
        **kwargs: other `ResNet` fields (`width`, `last_stride`, `dtype`, `norm`,
            `non_local`, `non_local_inter`), and
            optionally `stage_sizes` to override the depth (tests use [1, 1, 1, 1]).

    Returns:
        The (unbound) ResNet module.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {list(BACKBONES)}")
    stage_sizes, block = BACKBONES[name]
    if kwargs.get("stage_sizes") is None:
        kwargs["stage_sizes"] = stage_sizes
    return ResNet(block=block, **kwargs)
