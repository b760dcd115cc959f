"""Video (tracklet) re-ID evaluation: MARS, DukeMTMC-VideoReID, iLIDS-VID, PRID-2011.

MARS (Zheng et al., "MARS: A Video Benchmark for Large-Scale Person
Re-identification", ECCV 2016) is evaluated like Market-1501 (same-identity
same-camera tracklets and junk removed, distractors kept) on one feature per
tracklet, usually the mean of its frame features (torchreid ``pooling_method='avg'``).

Two protocols, reached from the ``video`` and ``image_to_video`` evaluators
(``evaluators.py``):

* video-to-video (V2V): one feature per query tracklet against one per gallery tracklet;
* image-to-video (I2V; TKP, Gu et al., ICCV 2019): one picture per query tracklet, its
  first frame (guxinqian/TKP utils/data_manager.py:72-76, ``_extract_1stfeame``),
  against the gallery tracklets.

A video network (``reid_jax/models/video.py``) embeds a tracklet from clips
(``eval.clip_sampling``: every frame in clips of ``data.clip_len``, or one evenly spaced
clip; ``reid_jax/data/tracklets.py``) and averages the clip features, as Gao and
Nevatia's dense test (jiyanggao/Video-Person-ReID main_video_person_reid.py:235); its
``images`` entry point embeds the I2V query pictures (TKP: the image network). An image
network embeds every frame and pools them (``eval.video_pooling``).

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

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from numpy.typing import ArrayLike

from reid_jax.data import pipeline, sources, tracklets
from reid_jax.evaluation import distance, embed, evaluate, visualize
from reid_jax.models import video as video_models


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


@dataclasses.dataclass(frozen=True)
class Embedded:
    """One test split as the protocol sees it: a feature, identity and camera per item,
    and the frame shown for each item in the ranked-list picture."""

    features: np.ndarray
    person_ids: np.ndarray
    camera_ids: np.ndarray
    thumbnails: np.ndarray


def _embed_fn(model: nn.Module, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh,
              method: str | None, clip_len: int = 0) -> Any:
    return embed.make_embed_fn(model, mesh, config.eval.feature, config.eval.flip, method,
                               clip_len)


def embed_tracklets(
    model: nn.Module, variables: Any, data: sources.ReidData, config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh, desc: str,
) -> Embedded:
    """One feature per tracklet of ``data`` (see the module docstring)."""
    tracks = tracklets.of(data)
    d, e = config.data, config.eval
    common = dict(num_threads=d.num_threads, desc=desc, progress=config.train.progress,
                  resize=d.resize)
    if video_models.is_video(model):
        clips, owner = tracklets.test_clips(tracks, d.clip_len, e.clip_sampling)
        fn = _embed_fn(model, config, mesh, "clips", d.clip_len)
        feats = embed.extract_clip_features(fn, variables, data, clips, mesh, e.batch_size,
                                            d.height, d.width, **common)
        pooled = tracklets.mean_by_owner(feats, owner, len(tracks))
    else:
        fn = _embed_fn(model, config, mesh, None)
        frames = embed.extract_features(fn, variables, data, mesh, e.batch_size, d.height,
                                        d.width, **common)
        owner = np.empty(len(data), np.int64)
        for i, f in enumerate(tracks.frames):
            owner[f] = i
        pooled = pool_tracklets(frames, owner, e.video_pooling)
    return Embedded(pooled, tracks.person_ids, tracks.camera_ids, tracks.middle_frames())


def embed_first_frames(
    model: nn.Module, variables: Any, data: sources.ReidData, config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh, desc: str,
) -> Embedded:
    """The I2V queries: the first frame of each tracklet of ``data``, as a picture."""
    tracks = tracklets.of(data)
    first = np.asarray([f[0] for f in tracks.frames], np.int64)
    d, e = config.data, config.eval
    method = "images" if video_models.is_video(model) else None
    fn = _embed_fn(model, config, mesh, method)
    feats = embed.extract_features(fn, variables, data, mesh, e.batch_size, d.height, d.width,
                                   d.num_threads, desc=desc, progress=config.train.progress,
                                   resize=d.resize, rows=first)
    return Embedded(feats, tracks.person_ids, tracks.camera_ids, first)


def evaluate_embedded(
    query: Embedded, gallery: Embedded, config: ml_collections.ConfigDict,
) -> dict:
    """The Market-style protocol of ``query`` against ``gallery`` (``eval.metric``)."""
    return evaluate_video(query.features, gallery.features, query.person_ids,
                          gallery.person_ids, query.camera_ids, gallery.camera_ids,
                          metric=config.eval.metric, max_rank=min(50, len(gallery.features)))


def save_ranked_list(
    path: str, query: Embedded, gallery: Embedded, query_data: sources.ReidData,
    gallery_data: sources.ReidData, config: ml_collections.ConfigDict,
) -> str:
    """Ranked-list PNG of evenly spaced queries, one frame per tracklet (its middle frame;
    an I2V query shows its own picture)."""
    num = min(config.eval.num_ranked_queries, len(query.features))
    pick = np.linspace(0, len(query.features) - 1, num=num).astype(int)
    dist = distance.pairwise_distances(query.features[pick], gallery.features,
                                       config.eval.metric)
    cols = np.unique(np.argsort(dist, axis=1, kind="stable")[:, :100])
    d = config.data
    load = lambda data, i: pipeline.load_image(data, int(i), d.height, d.width, d.resize)  # noqa: E731
    return visualize.save_ranked_list(
        path,
        np.stack([load(query_data, query.thumbnails[i]) for i in pick]),
        np.stack([load(gallery_data, gallery.thumbnails[j]) for j in cols]),
        dist[:, cols], query.person_ids[pick], gallery.person_ids[cols],
        query.camera_ids[pick], gallery.camera_ids[cols], np.arange(len(pick)), topk=10,
    )
