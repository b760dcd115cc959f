"""Global + horizontal-part features with one BNNeck and classifier each (PPLR).

Cho et al., "Part-based Pseudo Label Refinement for Unsupervised Person
Re-identification", CVPR 2022 (official ``pplr/models/resnet_part.py``): a ResNet with
last stride 1; the global feature is the average-pooled map, the part features are the
map average-pooled over ``num_parts`` horizontal stripes (``AdaptiveAvgPool2d((P, 1))``,
3 parts); each goes through its own BatchNorm neck (bias frozen, as BoT) and a bias-free
classifier. The classifiers hold ``num_classes`` rows, a maximum number of clusters (3000
in the official code); each round the trainer overwrites the first ``C`` with the
normalised cluster centroids and masks the rest.

Stripes follow PyTorch's adaptive pooling bins, ``[floor(i H / P), ceil((i + 1) H / P))``,
so they overlap when H is not a multiple of P.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from reid_jax.models import heads, resnet


class PartNet(nn.Module):
    """Backbone -> (global pooling, stripe pooling) -> one BNNeck + classifier each.

    Attributes:
      backbone: a key of ``resnet.BACKBONES``.
      stage_sizes: overrides the backbone's blocks per stage (tests: [1, 1, 1, 1]).
      width: base width of the ResNet.
      last_stride: stride of stage 4 (1 in PPLR).
      norm: backbone normalisation ('bn', 'ibn_a', 'ibn_b').
      num_parts: horizontal stripes (3 in PPLR).
      num_classes: classifier rows (maximum number of clusters); 0 for none.
      dtype: backbone compute dtype.
      stem_relu: ReLU after the backbone stem's norm (see ``resnet.ResNet``).
    """

    backbone: str = "resnet50"
    stage_sizes: Sequence[int] | None = None
    width: int = 64
    last_stride: int = 1
    norm: str = "bn"
    num_parts: int = 3
    num_classes: int = 0
    dtype: Any = jnp.float32
    stem_relu: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array | None]:
        """Embeds a batch of images.

        Args:
          x: [N, H, W, 3] normalised images.
          train: BatchNorm mode.

        Returns:
          Dict with 'features' ([N, C] pooled global), 'neck_features' ([N, C] global
          after its BNNeck: the retrieval feature), 'logits' ([N, K] or None),
          'part_features' ([N, P, C] after the part BNNecks), 'part_logits'
          ([N, P, K] or None), and 'all_features' ([N, 1 + P, C]: global then parts,
          after the necks; what a pseudo-label round embeds in one pass).
        """
        fmap = resnet.resnet(
            self.backbone,
            stage_sizes=self.stage_sizes,
            width=self.width,
            last_stride=self.last_stride,
            dtype=self.dtype,
            norm=self.norm,
            stem_relu=self.stem_relu,
            name="backbone",
        )(x, train)
        out = heads.BNNeck(num_classes=self.num_classes, name="neck")(heads.avg_pool(fmap), train)
        stripes = heads.stripe_pool(fmap, self.num_parts)
        part_out = [
            heads.BNNeck(num_classes=self.num_classes, name=f"part{i}_neck")(stripes[:, i], train)
            for i in range(self.num_parts)
        ]
        out["part_features"] = jnp.stack([p["neck_features"] for p in part_out], axis=1)
        out["part_logits"] = (
            jnp.stack([p["logits"] for p in part_out], axis=1) if self.num_classes else None
        )
        out["all_features"] = jnp.concatenate(
            [out["neck_features"][:, None], out["part_features"]], axis=1
        )
        return out
