"""Non-local block (dot-product form) as used by AGW.

Wang, Girshick, Gupta and He, "Non-local Neural Networks", CVPR 2018: the dot-product
instantiation y_i = (1/N) sum_j theta(x_i)^T phi(x_j) g(x_j) over all N positions,
z = BN(W y) + x, with the BatchNorm scale (and bias) initialised to 0 so that a new block
starts as the identity (Sec. 3.3).

AGW (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook",
TPAMI 2021) inserts such blocks into ResNet-50. Its official code (mangye16/ReID-Survey,
`modeling/layer/non_local.py`, copied by fast-reid `fastreid/layers/non_local.py`)
computes `inter_channels = reduc_ratio // reduc_ratio`, i.e. a single embedding
channel, where the paper's block uses C/2; the published AGW numbers come from that
code, so `inter_channels=1` is our default and `None` gives C // 2 as in Wang et al.
Convs g, theta, phi, W are 1x1 with bias, as there.

Since the dot-product form has no softmax, (theta phi^T) g = theta (phi^T g): we
multiply in that order, O(N C'^2) instead of O(N^2 C').
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# PyTorch BatchNorm2d defaults, as `resnet.BN_MOMENTUM/BN_EPS` (not imported: resnet
# imports this module).
BN_MOMENTUM = 0.9
BN_EPS = 1e-5
# AGW `ResNetNL(non_layers=[0, 2, 3, 0])`: blocks after the last 2 bottlenecks of stage 2
# and the last 3 of stage 3 (`NL_k_idx = sorted(layers[k] - (i + 1) ...)`).
AGW_NON_LOCAL = (0, 2, 3, 0)


class NonLocal(nn.Module):
    """Dot-product non-local block with a zero-initialised BatchNorm on the output.

    Attributes:
        inter_channels: embedding channels C'; None means in_channels // 2.
        dtype: compute dtype.
    """

    inter_channels: int | None = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Applies the block.

        Args:
            x: feature map [B, H, W, C].
            train: training mode for the BatchNorm.

        Returns:
            z = x + BN(W y), same shape and dtype as x.
        """
        batch, height, width, channels = x.shape
        inter = self.inter_channels or channels // 2

        def conv(features: int, name: str) -> nn.Conv:
            return nn.Conv(features, (1, 1), dtype=self.dtype, name=name)

        def flat(t: jax.Array) -> jax.Array:
            return t.reshape(batch, height * width, -1)

        g = flat(conv(inter, "g")(x))
        theta = flat(conv(inter, "theta")(x))
        phi = flat(conv(inter, "phi")(x))
        num = height * width
        y = theta @ (jnp.swapaxes(phi, 1, 2) @ g) / num
        y = conv(channels, "W_conv")(y.reshape(batch, height, width, inter))
        y = nn.BatchNorm(
            use_running_average=not train,
            momentum=BN_MOMENTUM,
            epsilon=BN_EPS,
            scale_init=nn.initializers.zeros,
            dtype=self.dtype,
            name="W_bn",
        )(y)
        return x + y
