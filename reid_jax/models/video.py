"""Video re-ID networks: a frame backbone over the clip, then temporal pooling.

- ``VideoNet``: ResNet on every frame of a clip (the clip folded into the batch:
  [N * T, H, W, 3]), spatial average pooling per frame, then one feature per clip by
  temporal average pooling (TAP, the MARS baseline of Zheng et al., "MARS: A Video
  Benchmark for Large-Scale Person Re-identification", ECCV 2016) or temporal attention
  (``TemporalAttention``), then BNNeck and the identity classifier (BoT's neck, as
  ``zoo.ReIDNet``). Its parameters are named as ``ReIDNet``'s ('backbone', 'neck'), so
  an image model's run or converted ImageNet weights initialise it.
- ``TKPNet`` (Gu et al., "Temporal Knowledge Propagation for Image-to-Video Person
  Re-identification", ICCV 2019): an image network and a video network, each a
  ``VideoNet`` (the image network always sees clips of one frame). Training feeds the
  same frames to both; at test the image network embeds query pictures (spatial
  average pooling) and the video network gallery tracklets (temporal average pooling).

Every video model has two evaluation entry points the evaluators call:
``images(x)`` (one picture each) and ``clips(x, clip_len)`` (clips folded into the
batch). ``__call__(x, train, clip_len=1)`` is the training forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from reid_jax.models import heads, resnet

TEMPORAL = ("avg", "attention")
ATTENTION_DIM = 256  # Gao & Nevatia's ResNet50TA middle_dim


class TemporalAttention(nn.Module):
    """One weight per frame of a clip, from its feature map (Gao and Nevatia, "Revisiting
    Temporal Modeling for Video-based Person ReID", 2018, temporal attention 'TA').

    A convolution whose kernel covers the whole map (a per-frame score vector of
    ``dim`` channels) and a ReLU, then a temporal convolution of width 3 over the clip
    to one score per frame and a ReLU, normalised over the clip by a softmax
    (``gen='softmax'``) or by a sigmoid divided by its sum (``gen='sigmoid'``).

    Attributes:
      dim: channels of the spatial convolution.
      gen: 'softmax' or 'sigmoid'.
    """

    dim: int = ATTENTION_DIM
    gen: str = "softmax"

    @nn.compact
    def __call__(self, fmap: jax.Array) -> jax.Array:
        """Frame weights.

        Args:
          fmap: [N, T, h, w, C] per-frame feature maps.

        Returns:
          [N, T] float32 weights summing to 1 over T.
        """
        n, t, h, w, c = fmap.shape
        x = jnp.asarray(fmap, jnp.float32).reshape(n * t, h, w, c)
        a = nn.relu(nn.Conv(self.dim, (h, w), padding="VALID", name="spatial")(x))
        a = a.reshape(n, t, self.dim)
        a = nn.relu(nn.Conv(1, (3,), padding=((1, 1),), name="temporal")(a))[..., 0]
        if self.gen == "softmax":
            return jax.nn.softmax(a, axis=1)
        s = jax.nn.sigmoid(a)
        return s / jnp.sum(s, axis=1, keepdims=True)


class _ClipArch(nn.Module):
    """The fields every video network declares (see ``VideoNet``)."""

    backbone: str = "resnet50"
    stage_sizes: Sequence[int] | None = None
    width: int = 64
    last_stride: int = 1
    norm: str = "bn"
    dtype: Any = jnp.float32
    stem_relu: bool = True
    temporal: str = "avg"
    attention_gen: str = "softmax"
    neck: str = "bnneck"
    num_classes: int = 0


class VideoNet(_ClipArch):
    """Frame backbone -> spatial average pooling -> temporal pooling -> BNNeck -> classifier.

    Attributes:
      backbone, stage_sizes, width, last_stride, norm, dtype, stem_relu: the frame
        ResNet (see ``resnet.ResNet``).
      temporal: 'avg' (TAP) or 'attention' (``TemporalAttention``).
      attention_gen: the attention's normalisation, 'softmax' or 'sigmoid'.
      neck: 'bnneck' or 'none'.
      num_classes: identities of the classifier; 0 = none.
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, clip_len: int = 1) -> dict[str, jax.Array]:
        """Embeds clips.

        Args:
          x: [N * T, H, W, 3] normalised frames, clip by clip (T = ``clip_len``).
          train: training mode of the BatchNorms.
          clip_len: frames per clip (1: every picture is its own clip).

        Returns:
          'features' [N, C] (temporally pooled, before the neck), 'neck_features' [N, C],
          'logits' [N, num_classes] or None, 'frame_features' [N, T, C] (each frame's
          spatially pooled feature) and 'frame_weights' [N, T] (the temporal pooling's
          weights: 1 / T for TAP).
        """
        if self.temporal not in TEMPORAL:
            raise ValueError(f"unknown temporal pooling {self.temporal!r}; expected {TEMPORAL}")
        if x.shape[0] % clip_len:
            raise ValueError(f"{x.shape[0]} frames are not whole clips of {clip_len}")
        fmap = resnet.resnet(
            self.backbone, stage_sizes=self.stage_sizes, width=self.width,
            last_stride=self.last_stride, dtype=self.dtype, norm=self.norm,
            stem_relu=self.stem_relu, name="backbone",
        )(x, train)
        n = x.shape[0] // clip_len
        frames = heads.avg_pool(fmap).reshape(n, clip_len, -1)
        if self.temporal == "attention":
            weights = TemporalAttention(gen=self.attention_gen, name="attention")(
                fmap.reshape(n, clip_len, *fmap.shape[1:]))
        else:
            weights = jnp.full((n, clip_len), 1.0 / clip_len, jnp.float32)
        pooled = jnp.einsum("nt,ntc->nc", weights, frames)
        out = heads.BNNeck(num_classes=self.num_classes, use_bn=self.neck == "bnneck",
                           name="neck")(pooled, train)
        return {**out, "frame_features": frames, "frame_weights": weights}

    def images(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        """Each picture as a clip of one frame."""
        return self(x, train, 1)

    def clips(self, x: jax.Array, clip_len: int, train: bool = False) -> dict[str, jax.Array]:
        """Clips of ``clip_len`` frames folded into the batch."""
        return self(x, train, clip_len)


class TKPNet(_ClipArch):
    """TKP's image network and video network (Gu et al., ICCV 2019), side by side.

    Two networks of the same architecture with their own weights (guxinqian/TKP
    train.py:54-55): the image network sees single frames (spatial average pooling), the
    video network clips (``temporal`` pooling). One identity classifier is shared by
    both (train.py:155, 271, 275), a linear layer with a bias, weights drawn from
    N(0, 0.001^2) and a zero bias (models/ResNet.py:33-37), on 'neck_features' (the
    pooled feature itself with ``neck='none'``, as TKP).

    Attributes: as ``VideoNet``.
    """

    def setup(self) -> None:
        """The two networks ('image_net', 'video_net') and the shared 'classifier'."""
        arch = dict(backbone=self.backbone, stage_sizes=self.stage_sizes, width=self.width,
                    last_stride=self.last_stride, norm=self.norm, dtype=self.dtype,
                    stem_relu=self.stem_relu, neck=self.neck)
        self.image_net = VideoNet(temporal="avg", **arch)
        self.video_net = VideoNet(temporal=self.temporal, attention_gen=self.attention_gen,
                                  **arch)
        if self.num_classes:
            self.classifier = nn.Dense(
                self.num_classes, kernel_init=nn.initializers.normal(heads.CLASSIFIER_STD))

    def _classify(self, out: dict[str, jax.Array]) -> dict[str, jax.Array]:
        logits = self.classifier(out["neck_features"]) if self.num_classes else None
        return {**out, "logits": logits}

    def __call__(self, x: jax.Array, train: bool, clip_len: int = 1) -> dict[str, dict]:
        """Both networks on the same frames.

        Returns:
          {'image': the image network per frame ([N * T] pictures), 'video': the video
          network per clip ([N] clips)}, each with ``VideoNet``'s outputs and the shared
          classifier's 'logits'.
        """
        return {"image": self._classify(self.image_net(x, train, 1)),
                "video": self._classify(self.video_net(x, train, clip_len))}

    def images(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        """The image network (query pictures at test)."""
        return self.image_net(x, train, 1)

    def clips(self, x: jax.Array, clip_len: int, train: bool = False) -> dict[str, jax.Array]:
        """The video network (gallery tracklets at test)."""
        return self.video_net(x, train, clip_len)


VIDEO_MODELS: dict[str, type[nn.Module]] = {"video_net": VideoNet, "tkp": TKPNet}


def is_video(model: nn.Module) -> bool:
    """True for the networks that embed clips (``clips`` / ``images`` entry points)."""
    return isinstance(model, (VideoNet, TKPNet))
