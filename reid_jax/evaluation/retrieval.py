"""One evaluation of a model on a (query, gallery) pair: embed, distances, protocol, picture.

Used after training, before training (the untrained baseline), and by ``--mode=eval``.
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from reid_jax.data import pipeline, sources
from reid_jax.evaluation import distance, embed, protocols, visualize

_VIS_CANDIDATES = 100  # gallery columns per shown query that may hold its top-10 valid matches


def embed_split(
    model: nn.Module,
    variables: Any,
    data: sources.ReidData,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    desc: str,
) -> np.ndarray:
    """Features of every example of ``data`` as configured by config.eval."""
    fn = embed.make_embed_fn(model, mesh, config.eval.feature, config.eval.flip)
    return embed.extract_features(
        fn, variables, data, mesh, config.eval.batch_size, config.data.height, config.data.width,
        config.data.num_threads, desc=desc, progress=config.train.progress,
    )


def save_examples(
    path: str,
    dist: np.ndarray,
    query: sources.ReidData,
    gallery: sources.ReidData,
    config: ml_collections.ConfigDict,
    num_queries: int,
) -> str:
    """Ranked-list PNG for ``num_queries`` evenly spaced queries; loads only needed images."""
    q_idx = np.linspace(0, len(query) - 1, num=min(num_queries, len(query))).astype(int)
    top = np.argsort(dist[q_idx], axis=1, kind="stable")[:, :_VIS_CANDIDATES]
    cols = np.unique(top)
    h, w = config.data.height, config.data.width
    return visualize.save_ranked_list(
        path,
        np.stack([pipeline.load_image(query, int(i), h, w) for i in q_idx]),
        np.stack([pipeline.load_image(gallery, int(i), h, w) for i in cols]),
        dist[np.ix_(q_idx, cols)],
        query.person_ids[q_idx],
        gallery.person_ids[cols],
        query.camera_ids[q_idx],
        gallery.camera_ids[cols],
        np.arange(len(q_idx)),
        topk=10,
    )


def evaluate(
    model: nn.Module,
    variables: Any,
    query: sources.ReidData,
    gallery: sources.ReidData,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    picture: str | None = None,
) -> dict[str, float]:
    """Rank-1/5/10/20, mAP and mINP under the Market-1501 protocol.

    Args:
      picture: if given, a ranked-list PNG is written there.

    Returns:
      The protocol's scalars (fractions in [0, 1]) plus 'num_valid_queries'.
    """
    qf = embed_split(model, variables, query, config, mesh, "embed query")
    gf = embed_split(model, variables, gallery, config, mesh, "embed gallery")
    dist = distance.pairwise_distances(qf, gf, metric=config.eval.metric)
    res = protocols.evaluate_market(
        dist, query.person_ids, gallery.person_ids, query.camera_ids, gallery.camera_ids
    )
    out = {k: float(res[k]) for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")}
    out["num_valid_queries"] = int(res["num_valid_queries"])
    if picture:
        os.makedirs(os.path.dirname(picture) or ".", exist_ok=True)
        save_examples(picture, dist, query, gallery, config, config.eval.num_ranked_queries)
    return out
