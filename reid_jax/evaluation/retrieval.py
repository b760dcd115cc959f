"""One evaluation of a model on a (query, gallery) pair: embed, distances, protocol, picture.

The ``retrieval`` and ``splits`` evaluators (``evaluators.py``) run it.
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from reid_jax import errors
from reid_jax.data import pipeline, sources
from reid_jax.evaluation import distance, embed, visualize
from reid_jax.evaluation import evaluate as evaluate_lib

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
        resize=config.data.resize,
    )


def save_examples(
    path: str,
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    query: sources.ReidData,
    gallery: sources.ReidData,
    config: ml_collections.ConfigDict,
) -> str:
    """Ranked-list PNG for evenly spaced queries; loads only the pictures it shows."""
    num = min(config.eval.num_ranked_queries, len(query))
    q_idx = np.linspace(0, len(query) - 1, num=num).astype(int)
    dist = distance.pairwise_distances(query_features[q_idx], gallery_features, metric=config.eval.metric)
    top = np.argsort(dist, axis=1, kind="stable")[:, :_VIS_CANDIDATES]
    cols = np.unique(top)
    h, w = config.data.height, config.data.width
    return visualize.save_ranked_list(
        path,
        np.stack([pipeline.load_image(query, int(i), h, w, config.data.resize) for i in q_idx]),
        np.stack([pipeline.load_image(gallery, int(i), h, w, config.data.resize) for i in cols]),
        dist[:, cols],
        query.person_ids[q_idx],
        gallery.person_ids[cols],
        query.camera_ids[q_idx],
        gallery.camera_ids[cols],
        np.arange(len(q_idx)),
        topk=10,
    )


def scalars(res: dict, prefix: str = "") -> dict[str, float]:
    """The protocol's scalars (rank-1/5/10/20, mAP, mINP, valid queries) as floats."""
    out = {prefix + k: float(res[k]) for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")}
    out[prefix + "num_valid_queries"] = int(res["num_valid_queries"])
    return out


def evaluate(
    model: nn.Module,
    variables: Any,
    query: sources.ReidData,
    gallery: sources.ReidData,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    picture: str | None = None,
) -> dict[str, float]:
    """Rank-1/5/10/20, mAP and mINP under the Market-1501 protocol (and re-ranked).

    Distances are streamed in query blocks into the protocol, so the query x gallery
    matrix never sits on the host at once (MSMT17 scale).

    Args:
      picture: if given, a ranked-list PNG is written there.

    Returns:
      The protocol's scalars (fractions in [0, 1]) plus 'num_valid_queries'; with
      config.eval.rerank the same keys prefixed 'rerank_' for k-reciprocal re-ranking.
    """
    qf = embed_split(model, variables, query, config, mesh, "embed query")
    gf = embed_split(model, variables, gallery, config, mesh, "embed gallery")
    ids = (query.person_ids, gallery.person_ids, query.camera_ids, gallery.camera_ids)
    e = config.eval
    common = dict(metric=e.metric, max_rank=min(50, len(gallery)), aqe_k=e.aqe_k)
    try:
        out = scalars(evaluate_lib.evaluate_features(qf, gf, *ids, **common))
    except ValueError as e:  # e.g. no query has a match in the gallery
        raise errors.ReidError(
            f"cannot evaluate {query.name} against {gallery.name}: {e} Check config.data.query "
            "and config.data.gallery."
        ) from e
    if e.rerank:
        rr = evaluate_lib.evaluate_features(
            qf, gf, *ids, rerank=True, k1=e.rerank_k1, k2=e.rerank_k2,
            lambda_value=e.rerank_lambda, **common,
        )
        out.update(scalars(rr, "rerank_"))
    if picture and config.eval.num_ranked_queries > 0:
        os.makedirs(os.path.dirname(picture) or ".", exist_ok=True)
        save_examples(picture, qf, gf, query, gallery, config)
    return out
