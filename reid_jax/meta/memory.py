"""M3L's per-domain class memories: initialisation from class means and momentum update.

Zhao et al., M3L, CVPR 2021, Sec. 3.2. All source domains' memories live in one
[num_classes, C] array (training labels are disjoint across domains, see
``sources.open_data``) with ``class_domains[c]`` naming the domain of class c; the loss
masks the other domains' classes (``reid_jax.losses.meta.memory_identification_loss``).
Slots are L2-normalised. The update follows the official code (HeliosZhao/M3L
`reid/models/memory.py`, `MomentumUpdate`): sample by sample, in batch order,
M[y] <- m * M[y] + (1 - m) * f, then M[y] /= |M[y]|, with m = 0.2.
"""

from __future__ import annotations

import jax
import numpy as np

from reid_jax import vectors
from reid_jax.clustering import memory as cluster_memory

MEMORY_MOMENTUM = 0.2


def class_domains(labels: np.ndarray, domains: np.ndarray, num_classes: int) -> np.ndarray:
    """[num_classes] int32: the domain of each training class."""
    out = np.zeros(num_classes, np.int32)
    valid = labels >= 0
    out[labels[valid]] = domains[valid]
    return out


def init_from_features(features: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Memory initialised to the normalised mean of each class's normalised features.

    Args:
      features: [N, C] features of the training images (in order).
      labels: [N] their labels (< 0 ignored).
      num_classes: rows of the memory.

    Returns:
      float32 [num_classes, C].
    """
    f = vectors.l2_normalize_np(features)
    valid = labels >= 0
    sums = np.zeros((num_classes, f.shape[1]), np.float64)
    np.add.at(sums, labels[valid], f[valid])
    return vectors.l2_normalize_np(sums).astype(np.float32)


def update(
    memory: jax.Array, features: jax.Array, labels: jax.Array, momentum: float = MEMORY_MOMENTUM
) -> jax.Array:
    """Sequential momentum update of the memory rows of ``labels`` (no gradient).

    Args:
      memory: [num_classes, C].
      features: [N, C] features of the updated model (normalised here).
      labels: [N] class of each feature.
      momentum: m, the weight of the old slot.

    Returns:
      The updated memory.
    """
    return cluster_memory.momentum_update(memory, vectors.l2_normalize(features), labels, momentum)
