"""Pooling and embedding heads for re-identification (Flax Linen).

- GeM: generalized-mean pooling, Radenovic et al., "Fine-tuning CNN Image Retrieval
  with No Human Annotation", TPAMI 2018; p initialised to 3.0 and learnable as in the
  paper and in fast-reid (`GeneralizedMeanPoolingP(norm=3)`), clamp eps 1e-6 as there.
- BNNeck: Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person
  Re-identification", CVPRW 2019: BatchNorm between the pooled feature (used by the
  triplet loss) and a bias-free classifier (used by the ID loss). Constants from the
  official code (michuanhaohao/reid-strong-baseline, `modeling/baseline.py`): the
  BatchNorm1d bias is frozen at 0 (`bottleneck.bias.requires_grad_(False)`; here the
  trainer freezes the param named `bnneck/bias` through an optax mask), weight 1,
  classifier weights normal(std=0.001) (`weights_init_classifier`). One known
  difference: PyTorch's running variance uses the unbiased batch variance, Flax's the
  biased one, so at batch 64 our BNNeck running variance is 63/64 of PyTorch's.
- CosineClassifier: cos(theta) between L2-normalised features and class weights, the
  input of the margin softmaxes in `reid_jax/losses/margin.py` (CosFace, ArcFace).
- PCBHead: Sun et al., "Beyond Part Models: Person Retrieval with Refined Part Pooling
  (and A Strong Convolutional Baseline)", ECCV 2018: 6 horizontal stripes, each average
  pooled, reduced by its own 1x1 conv to 256 channels + BatchNorm + ReLU (h), and
  classified by its own FC layer (p = 6 and 256 from the paper, Sec. 3.1). Stripe
  boundaries follow PyTorch's `AdaptiveAvgPool2d((6, 1))` (floor/ceil bins) so any map
  height works. The reduction conv has no bias (a BatchNorm follows); the classifiers
  are initialised normal(std=0.001) with zero bias, as the widely used reproduction
  (huanghoujing/beyond-part-models, `PCBModel`).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from reid_jax import vectors
from reid_jax.models import resnet

# BoT `weights_init_classifier`: nn.init.normal_(m.weight, std=0.001).
CLASSIFIER_STD = 0.001
# Radenovic et al. / fast-reid GeM defaults.
GEM_P = 3.0
GEM_EPS = 1e-6


def gem_pool(x: jax.Array, p: float | jax.Array = GEM_P, eps: float = GEM_EPS) -> jax.Array:
    """Generalized-mean pooling over the spatial axes.

    `(mean_{h,w} max(x, eps)^p)^(1/p)`: p=1 is average pooling, p -> inf max pooling.

    Args:
        x: feature map [N, H, W, C].
        p: exponent (scalar, Python or array).
        eps: lower clamp, keeps the power and its gradient finite at 0.

    Returns:
        Pooled features [N, C], in x's dtype promoted with p's.
    """
    x = jnp.maximum(x, eps)
    return jnp.mean(x**p, axis=(1, 2)) ** (1.0 / p)


class GeM(nn.Module):
    """GeM pooling with one exponent shared by all channels, learnable or fixed.

    Attributes:
        p_init: initial (or fixed) exponent.
        eps: lower clamp of the activations.
        learnable: p is a parameter (AGW's official `GeneralizedMeanPoolingP`, cluster
            contrast) or the constant ``p_init`` (fast-reid's AGW, `GeneralizedMeanPooling`).
    """

    p_init: float = GEM_P
    eps: float = GEM_EPS
    learnable: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Pools a feature map.

        Args:
            x: feature map [N, H, W, C].

        Returns:
            Pooled features [N, C] in float32.
        """
        if not self.learnable:
            return gem_pool(jnp.asarray(x, jnp.float32), jnp.float32(self.p_init), self.eps)
        p = self.param("p", nn.initializers.constant(self.p_init), (1,), jnp.float32)
        return gem_pool(jnp.asarray(x, jnp.float32), p[0], self.eps)


def avg_pool(x: jax.Array) -> jax.Array:
    """Global average pooling in float32.

    Args:
        x: feature map [N, H, W, C].

    Returns:
        Pooled features [N, C] in float32.
    """
    return jnp.mean(jnp.asarray(x, jnp.float32), axis=(1, 2))


class BNNeck(nn.Module):
    """BatchNorm neck and optional bias-free classifier (BoT).

    Attributes:
        num_classes: classifier outputs; 0 means no classifier.
        use_bn: False gives the plain baseline (classifier on the pooled feature).
        cosine: the classifier returns cos(theta) to normalised class weights
            (`CosineClassifier`), for the margin softmaxes of `losses/margin.py`.
    """

    num_classes: int = 0
    use_bn: bool = True
    cosine: bool = False

    @nn.compact
    def __call__(self, features: jax.Array, train: bool) -> dict[str, jax.Array | None]:
        """Applies the neck.

        Args:
            features: pooled features [N, C].
            train: training mode for the BatchNorm.

        Returns:
            Dict with 'features' (input, float32), 'neck_features' (after BatchNorm;
            the input when `use_bn` is False) and 'logits' ([N, num_classes] float32,
            cosines when `cosine`, or None when num_classes == 0).
        """
        features = jnp.asarray(features, jnp.float32)
        neck = features
        if self.use_bn:
            neck = nn.BatchNorm(
                use_running_average=not train,
                momentum=resnet.BN_MOMENTUM,
                epsilon=resnet.BN_EPS,
                name="bnneck",
            )(features)
        logits = None
        if self.num_classes > 0 and self.cosine:
            logits = CosineClassifier(self.num_classes, name="classifier")(neck)
        elif self.num_classes > 0:
            logits = nn.Dense(
                self.num_classes,
                use_bias=False,
                kernel_init=nn.initializers.normal(CLASSIFIER_STD),
                name="classifier",
            )(neck)
        return {"features": features, "neck_features": neck, "logits": logits}


class CosineClassifier(nn.Module):
    """Cosine similarities to learnable class weights (input of CosFace / ArcFace).

    Attributes:
        num_classes: number of classes K.
        std: init std of the (then normalised) weights; BoT's classifier value.
    """

    num_classes: int
    std: float = CLASSIFIER_STD

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        """Computes cos(theta).

        Args:
            features: [N, D] embeddings.

        Returns:
            [N, K] cosines in [-1, 1], float32.
        """
        features = jnp.asarray(features, jnp.float32)
        kernel = self.param(
            "kernel", nn.initializers.normal(self.std), (features.shape[-1], self.num_classes)
        )
        features = vectors.l2_normalize(features)
        kernel = vectors.l2_normalize(kernel, axis=0)
        return features @ kernel


# Sun et al. 2018, Sec. 3.1: p = 6 stripes, each reduced to 256 channels.
PCB_PARTS = 6
PCB_DIM = 256


def stripe_pool(x: jax.Array, num_parts: int) -> jax.Array:
    """Average pooling over `num_parts` horizontal stripes (adaptive bins).

    Stripe i covers rows floor(i * H / P) to ceil((i + 1) * H / P), as
    `torch.nn.AdaptiveAvgPool2d((P, 1))`; stripes overlap when H is not a multiple of P.

    Args:
        x: feature map [N, H, W, C].
        num_parts: number of stripes P.

    Returns:
        [N, P, C] stripe means in float32.
    """
    x = jnp.asarray(x, jnp.float32)
    height = x.shape[1]
    stripes = []
    for i in range(num_parts):
        start = (i * height) // num_parts
        end = -((-(i + 1) * height) // num_parts)
        stripes.append(jnp.mean(x[:, start:end], axis=(1, 2)))
    return jnp.stack(stripes, axis=1)


class PCBHead(nn.Module):
    """Part-based Convolutional Baseline head (Sun et al., ECCV 2018).

    Attributes:
        num_parts: number of horizontal stripes (6).
        part_dim: reduced channels per stripe (256).
        num_classes: classes of each stripe's classifier; 0 for none.
        dropout: dropout rate on the pooled stripes before the reduction (0.5 in the
            official code, syfafterzy/PCB_RPP_for_reID; needs a 'dropout' rng in training).
        shared_reduction: one 1x1 conv (no bias) + BatchNorm for all stripes, as the
            official code; else one conv and BatchNorm statistics per stripe.
    """

    num_parts: int = PCB_PARTS
    part_dim: int = PCB_DIM
    num_classes: int = 0
    dropout: float = 0.0
    shared_reduction: bool = False

    @nn.compact
    def __call__(self, fmap: jax.Array, train: bool) -> dict[str, jax.Array | None]:
        """Computes the part features and logits.

        Args:
            fmap: backbone feature map [N, H, W, C].
            train: training mode for the BatchNorm and the dropout.

        Returns:
            Dict with 'stripe_features' ([N, P, C] pooled g), 'part_features'
            ([N, P, part_dim] h, after BatchNorm and ReLU) and 'part_logits'
            ([N, P, num_classes] or None), all float32.
        """
        g = stripe_pool(fmap, self.num_parts)
        channels = g.shape[-1]
        x = nn.Dropout(self.dropout, deterministic=not train)(g) if self.dropout > 0 else g
        if self.shared_reduction:
            kernel = self.param(
                "local_conv",
                nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
                (channels, self.part_dim),
                jnp.float32,
            )
            h = jnp.einsum("npc,cd->npd", x, kernel)
            axis: int | tuple[int, int] = -1  # one BatchNorm2d over the P x 1 map
        else:
            # One independent 1x1 conv per stripe: a [P, C, D] kernel.
            kernel = self.param(
                "local_conv",
                # Kaiming fan_out as the backbone's convs; axis 0 indexes the stripes.
                nn.initializers.variance_scaling(2.0, "fan_out", "normal", batch_axis=(0,)),
                (self.num_parts, channels, self.part_dim),
                jnp.float32,
            )
            h = jnp.einsum("npc,pcd->npd", x, kernel)
            axis = (-2, -1)  # statistics per stripe and channel
        h = nn.BatchNorm(
            use_running_average=not train,
            momentum=resnet.BN_MOMENTUM,
            epsilon=resnet.BN_EPS,
            axis=axis,
            name="local_bn",
        )(h)
        h = nn.relu(h)
        logits = None
        if self.num_classes > 0:
            fc = self.param(
                "fc_kernel",
                nn.initializers.normal(CLASSIFIER_STD),
                (self.num_parts, self.part_dim, self.num_classes),
                jnp.float32,
            )
            bias = self.param(
                "fc_bias", nn.initializers.zeros, (self.num_parts, self.num_classes), jnp.float32
            )
            logits = jnp.einsum("npd,pdk->npk", h, fc) + bias
        return {"stripe_features": g, "part_features": h, "part_logits": logits}
