"""Camera-aware proxies (CAP): one proxy per (cluster, camera), intra- and inter-camera losses.

Wang, Lai, Huang, Gong & Hua, "Camera-aware Proxies for Unsupervised Person
Re-Identification", AAAI 2021 (official code: Terminator8758/CAP-master,
``reid/loss/CamAwareMemory.py``, ``reid/img_grouping.py``, ``train_cap.py``). Facts
followed, from the official code:

* each DBSCAN cluster is split by camera; proxies are numbered camera by camera, and
  within a camera by cluster id (``accumulate_labels``); a proxy is the normalised mean
  of the normalised features of its images (``intra_id_reinitialize``), rebuilt every
  epoch; the sampler draws P proxies x K = 4 images (``ClassUniformlySampler`` on the
  proxy label), batch 32;
* intra-camera loss: for each camera in the batch, cross-entropy of its samples over
  the proxies *of that camera*, temperature 0.07 (``--inv_beta``), mean over the
  camera's samples; the per-camera losses are summed;
* inter-camera loss (from epoch 5, ``crosscam_epoch``): logits against every proxy
  (the memory as it was before this step), positives = all proxies of the sample's
  cluster, negatives = the 50 (``bg_knn``) most similar proxies of other clusters,
  target 1 / |positives| on each positive; per camera the mean over its samples times
  0.5, summed over cameras;
* memory: per-sample sequential update ``M[y] <- a M[y] + (1 - a) f``, renormalised,
  a = 0.2 (``--inv_alpha``), the same scan as cluster contrast (``memory.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from reid_jax.losses import contrastive

# CAP official defaults: --inv_beta 0.07, --inv_alpha 0.2, bg_knn=50, crosscam_epoch=5.
TEMPERATURE = 0.07
MOMENTUM = 0.2
HARD_NEGATIVES = 50
CROSSCAM_EPOCH = 5
INTER_WEIGHT = 0.5


def build_proxies(labels: np.ndarray, cameras: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits clusters by camera.

    Args:
      labels: [N] cluster labels, -1 for outliers.
      cameras: [N] camera ids.

    Returns:
      (proxy label of each image [N] int32 with -1 for outliers, cluster of each proxy
      [M] int32, camera of each proxy [M] int32); proxies ordered by camera, then cluster.
    """
    labels = np.asarray(labels)
    cameras = np.asarray(cameras)
    keep = labels >= 0
    pairs = np.stack([cameras[keep], labels[keep]], axis=1).astype(np.int64)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)  # sorted by camera, cluster
    proxy = np.full(labels.shape, -1, np.int32)
    proxy[keep] = inverse.reshape(-1)
    return proxy, uniq[:, 1].astype(np.int32), uniq[:, 0].astype(np.int32)


def _camera_weights(cams: jax.Array) -> jax.Array:
    """1 / (samples of the same camera in the batch): per-camera means, then summed."""
    same = cams[:, None] == cams[None, :]
    return 1.0 / jnp.sum(same, axis=1)


def cap_losses(
    features: jax.Array,
    proxy_labels: jax.Array,
    memory: jax.Array,
    proxy_cluster: jax.Array,
    proxy_camera: jax.Array,
    num_proxies: jax.Array,
    temperature: float = TEMPERATURE,
    hard_negatives: int = HARD_NEGATIVES,
) -> tuple[jax.Array, jax.Array]:
    """Intra- and inter-camera losses of a batch (the inter one unweighted).

    Args:
      features: [B, D] features (normalised here).
      proxy_labels: [B] proxy of each sample.
      memory: [M, D] proxies (rows >= num_proxies are padding); no gradient.
      proxy_cluster: [M] cluster of each proxy (-1 for padding).
      proxy_camera: [M] camera of each proxy.
      num_proxies: number of valid proxies.
      temperature: softmax temperature (0.07).
      hard_negatives: negatives per sample in the inter-camera loss (50).

    Returns:
      (intra-camera loss, inter-camera loss), each a sum over the batch's cameras of
      the mean over that camera's samples.
    """
    logits = contrastive.memory_logits(features, memory, jnp.asarray(memory.shape[0]), temperature)
    valid = contrastive.class_mask(memory.shape[0], num_proxies)
    cams = proxy_camera[proxy_labels]
    clusters = proxy_cluster[proxy_labels]
    w = _camera_weights(cams)
    neg = contrastive.NEG_INF
    # Intra-camera: softmax over the proxies of the sample's camera.
    same_cam = valid[None, :] & (proxy_camera[None, :] == cams[:, None])
    logp = jax.nn.log_softmax(jnp.where(same_cam, logits, neg), axis=1)
    ce = -jnp.take_along_axis(logp, proxy_labels[:, None].astype(jnp.int32), axis=1)[:, 0]
    intra = jnp.sum(w * ce)
    # Inter-camera: all proxies of the cluster vs the hardest proxies of other clusters.
    pos = valid[None, :] & (proxy_cluster[None, :] == clusters[:, None])
    k = min(hard_negatives, memory.shape[0])
    cand = jax.lax.stop_gradient(jnp.where(pos | ~valid[None, :], -jnp.inf, logits))
    top, idx = jax.lax.top_k(cand, k)
    neg_logits = jnp.where(jnp.isfinite(top), jnp.take_along_axis(logits, idx, axis=1), neg)
    lse = jax.nn.logsumexp(jnp.concatenate([jnp.where(pos, logits, neg), neg_logits], 1), axis=1)
    n_pos = jnp.maximum(jnp.sum(pos, axis=1), 1)
    inter_i = lse - jnp.sum(jnp.where(pos, logits, 0.0), axis=1) / n_pos
    return intra, jnp.sum(w * inter_i)
