"""Video (tracklet) re-ID evaluation: MARS, DukeMTMC-VideoReID, iLIDS-VID, PRID-2011.

MARS (Zheng et al., "MARS: A Video Benchmark for Large-Scale Person
Re-identification", ECCV 2016) is evaluated like Market-1501 (same-identity
same-camera tracklets and junk removed, distractors kept) on one feature per
tracklet, usually the mean of its frame features (torchreid ``pooling_method='avg'``).

Gallery convention, which changes the numbers:

* ``include_query_in_gallery=False`` (default; torchreid's MARS loader): the gallery is
  the 9,330 gallery tracklets only, so queries whose identity appears in no other
  camera of that gallery are skipped as having no match;
* ``True`` (TKP, Gu et al., "Temporal Knowledge Propagation for Image-to-Video Person
  Re-identification", ICCV 2019): the 1,980 query tracklets are appended to the
  gallery ("otherwise 140 query images will not have ground truth"); each query's own
  tracklet is then removed by the same-identity-same-camera rule.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from reid_jax.evaluation import evaluate


def pool_tracklets(frame_features: ArrayLike, tracklet_ids: ArrayLike, method: str = 'avg') -> np.ndarray:
    """One feature per tracklet from its frame features.

    Args:
      frame_features: [f, d] features of all frames.
      tracklet_ids: [f] tracklet index of each frame, in 0..t-1 (every index present).
      method: 'avg' (mean) or 'max' (element-wise max), torchreid's pooling methods.

    Returns:
      [t, d] float32 tracklet features.
    """
    feats = np.asarray(frame_features, np.float32)
    ids = np.asarray(tracklet_ids, np.int64).reshape(-1)
    t = int(ids.max()) + 1
    if method == 'avg':
        sums = np.zeros((t, feats.shape[1]), np.float64)
        np.add.at(sums, ids, feats)
        counts = np.bincount(ids, minlength=t)
        if (counts == 0).any():
            raise ValueError('Every tracklet index 0..t-1 needs at least one frame.')
        return (sums / counts[:, None]).astype(np.float32)
    if method == 'max':
        out = np.full((t, feats.shape[1]), -np.inf, np.float32)
        np.maximum.at(out, ids, feats)
        return out
    raise ValueError(f"method must be 'avg' or 'max', got {method!r}.")


def evaluate_video(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    include_query_in_gallery: bool = False,
    **kwargs: object,
) -> dict:
    """Tracklet-level Market-style evaluation (see module docstring for the gallery).

    Args:
      query_features: [q, d] tracklet features.
      gallery_features: [g, d] tracklet features.
      q_pids: [q] query identities.
      g_pids: [g] gallery identities.
      q_camids: [q] query cameras.
      g_camids: [g] gallery cameras.
      include_query_in_gallery: append the query tracklets to the gallery (TKP).
      **kwargs: passed to ``evaluate.evaluate_features`` (metric, rerank, ...).

    Returns:
      dict of ``protocols.evaluate_market``.
    """
    if include_query_in_gallery:
        gallery_features = np.concatenate([np.asarray(query_features), np.asarray(gallery_features)])
        g_pids = np.concatenate([np.asarray(q_pids), np.asarray(g_pids)])
        g_camids = np.concatenate([np.asarray(q_camids), np.asarray(g_camids)])
    return evaluate.evaluate_features(
        query_features, gallery_features, q_pids, g_pids, q_camids, g_camids, **kwargs
    )
