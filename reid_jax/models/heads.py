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
  classifier weights normal(std=0.001) (`weights_init_classifier`).
- CosineClassifier: cos(theta) between L2-normalised features and class weights, the
  input of the margin softmaxes in `reid_jax/losses/margin.py` (CosFace, ArcFace).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

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
    """GeM pooling with a learnable exponent (one scalar shared by all channels).

    Attributes:
        p_init: initial exponent.
        eps: lower clamp of the activations.
    """

    p_init: float = GEM_P
    eps: float = GEM_EPS

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Pools a feature map.

        Args:
            x: feature map [N, H, W, C].

        Returns:
            Pooled features [N, C] in float32.
        """
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
    """

    num_classes: int = 0
    use_bn: bool = True

    @nn.compact
    def __call__(self, features: jax.Array, train: bool) -> dict[str, jax.Array | None]:
        """Applies the neck.

        Args:
            features: pooled features [N, C].
            train: training mode for the BatchNorm.

        Returns:
            Dict with 'features' (input, float32), 'neck_features' (after BatchNorm;
            the input when `use_bn` is False) and 'logits' ([N, num_classes] float32 or
            None when num_classes == 0).
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
        if self.num_classes > 0:
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
        features = features / jnp.maximum(jnp.linalg.norm(features, axis=-1, keepdims=True), 1e-12)
        kernel = kernel / jnp.maximum(jnp.linalg.norm(kernel, axis=0, keepdims=True), 1e-12)
        return features @ kernel
