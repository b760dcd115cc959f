"""TKP's losses (Gu et al., "Temporal Knowledge Propagation for Image-to-Video Person
Re-identification", ICCV 2019), pure functions of features and labels.

Facts from the official code (guxinqian/TKP @320ce80, utils/losses.py, train.py):

- feature propagation (``FeatureBasedTKP``, losses.py:72-88): the mean over the N T
  frames of the squared Euclidean distance between the image network's feature of a
  frame and the video network's feature of the same frame (after spatial pooling,
  before the temporal mean, train.py:280);
- distance propagation (``SimilarityBasedTKP``, losses.py:91-124): the two (N T) x (N T)
  Euclidean distance matrices (sqrt of the squared distance clamped at 1e-12) among
  those image features and among those video frame features; the loss is the mean of
  their squared difference over all entries;
- both propagate from the video network to the image network: the video features are
  detached (losses.py:81-83, 101-103; the ``--bp_to_vid`` flag is off by default,
  train.py:57); ``teacher_gradient=True`` lets the gradient reach the video network too;
- the integrated triplet loss (``HeterogeneousTripletLoss``, margin 0.3, losses.py:11-69):
  batch-hard over a second set, hinge on unnormalised Euclidean distances, called as
  image->video, video->image, image->image and video->video (train.py:282-285).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reid_jax import vectors
from reid_jax.losses import metric


def _teacher(x: jax.Array, teacher_gradient: bool) -> jax.Array:
    return x if teacher_gradient else jax.lax.stop_gradient(x)


def feature_propagation(
    image_frames: jax.Array, video_frames: jax.Array, teacher_gradient: bool = False
) -> jax.Array:
    """L_F = 1/(N T) sum_nt ||i_nt - f_nt||^2.

    Args:
      image_frames: [M, C] the image network's feature of each frame (M = N T).
      video_frames: [M, C] the video network's feature of the same frames.
      teacher_gradient: let the gradient reach the video features.
    """
    diff = image_frames - _teacher(video_frames, teacher_gradient)
    return jnp.mean(jnp.sum(diff * diff, axis=-1))


def distance_propagation(
    image_frames: jax.Array, video_frames: jax.Array, teacher_gradient: bool = False
) -> jax.Array:
    """L_D = 1/(N T)^2 ||D_img - D_vid||_F^2 with D the [M, M] Euclidean distances.

    Args: as :func:`feature_propagation`.
    """
    video = _teacher(video_frames, teacher_gradient)
    d_img = vectors.euclidean(image_frames, image_frames)
    d_vid = vectors.euclidean(video, video)
    return jnp.mean((d_img - d_vid) ** 2)


def cross_batch_hard_triplet(
    anchors: jax.Array, anchor_labels: jax.Array, others: jax.Array, other_labels: jax.Array,
    margin: float = metric.TRIPLET_MARGIN,
) -> jax.Array:
    """Batch-hard triplet of ``anchors`` against a second set (TKP's heterogeneous
    triplet): for each anchor the farthest same-label and the nearest other-label member
    of ``others``; mean of max(0, d_ap - d_an + margin) over the anchors that have both.

    Args:
      anchors: [A, C]; anchor_labels: [A].
      others: [B, C]; other_labels: [B] (the same set as the anchors for I2I / V2V: an
        anchor's own zero distance never is the hardest positive when it has another).
      margin: the hinge margin (TKP 0.3).
    """
    dist = vectors.euclidean(anchors, others)
    same = anchor_labels[:, None] == other_labels[None, :]
    d_pos = jnp.max(jnp.where(same, dist, 0.0), axis=1)
    big = jax.lax.stop_gradient(jnp.max(dist)) + 1.0
    d_neg = jnp.min(jnp.where(same, big, dist), axis=1)
    valid = jnp.any(same, axis=1) & jnp.any(~same, axis=1)
    per = jax.nn.relu(d_pos - d_neg + margin)
    return jnp.sum(jnp.where(valid, per, 0.0)) / jnp.maximum(jnp.sum(valid), 1)


def integrated_triplet(
    images: jax.Array, image_labels: jax.Array, videos: jax.Array, video_labels: jax.Array,
    margin: float = metric.TRIPLET_MARGIN,
) -> dict[str, jax.Array]:
    """L_T's four terms: 'i2v', 'v2i', 'i2i', 'v2v' (their sum is TKP's L_T).

    Args:
      images: [M, C] image features (M = N T frames); image_labels: [M].
      videos: [N, C] video features; video_labels: [N].
      margin: the hinge margin.
    """
    return {
        "i2v": cross_batch_hard_triplet(images, image_labels, videos, video_labels, margin),
        "v2i": cross_batch_hard_triplet(videos, video_labels, images, image_labels, margin),
        "i2i": cross_batch_hard_triplet(images, image_labels, images, image_labels, margin),
        "v2v": cross_batch_hard_triplet(videos, video_labels, videos, video_labels, margin),
    }
