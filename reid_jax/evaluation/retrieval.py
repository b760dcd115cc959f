"""One evaluation of a model on a (query, gallery) pair: embed, distances, protocol, picture.

The ``retrieval`` and ``splits`` evaluators (``evaluators.py``) run it. A ``Scorer``
says where the distances come from: features and ``eval.metric`` for the embedding
networks, the network's own pair scores for the pair networks
(``reid_jax/evaluation/pairs.py``); the protocol, re-ranking and the ranked-list
picture are the same for both.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from reid_jax import errors
from reid_jax.data import pipeline, sources
from reid_jax.evaluation import distance, embed, pairs, protocols, rerank, visualize
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


@dataclasses.dataclass(frozen=True)
class Scorer:
    """Query x gallery distances of one model: from features (``eval.metric``) or, for a
    pair network, from its pair scores.

    Attributes:
      model: the network; variables: its evaluation variables.
      config: the run's config; mesh: the device mesh.
    """

    model: nn.Module
    variables: Any
    config: ml_collections.ConfigDict
    mesh: jax.sharding.Mesh

    @property
    def pairwise(self) -> bool:
        """True when the model scores pairs."""
        return pairs.is_pairwise(self.model)

    def represent(self, data: sources.ReidData, desc: str) -> np.ndarray:
        """Every picture of ``data`` once: its feature, or a pair network's ``embed``."""
        if not self.pairwise:
            return embed_split(self.model, self.variables, data, self.config, self.mesh, desc)
        c = self.config
        return pairs.trunk_features(
            self.model, self.variables, data, self.mesh, c.eval.batch_size, c.data.height,
            c.data.width, c.data.num_threads, desc=desc, progress=c.train.progress,
            resize=c.data.resize)

    def blocks(self, query: np.ndarray, gallery: np.ndarray) -> Iterator[tuple[int, Any]]:
        """``(start, [b, g] distances)`` of consecutive query blocks."""
        if self.pairwise:
            return pairs.iter_pair_distances(self.model, self.variables, query, gallery,
                                             self.mesh, self.config.eval.pair_block)
        return distance.iter_distance_chunks(query, gallery, self.config.eval.metric)

    def matrix(self, query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """The whole [q, g] distance matrix on the host."""
        return distance.collect_blocks(self.blocks(query, gallery), query.shape[0],
                                       gallery.shape[0])


def save_examples(
    path: str,
    scorer: Scorer,
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    query: sources.ReidData,
    gallery: sources.ReidData,
    config: ml_collections.ConfigDict,
    q_rows: np.ndarray | None = None,
    g_rows: np.ndarray | None = None,
) -> str:
    """Ranked-list PNG for evenly spaced queries; loads only the pictures it shows.

    ``q_rows`` / ``g_rows``: the pictures of ``query`` / ``gallery`` the features belong
    to, when they are a subset (single-shot draws); default all, in order.
    """
    q_rows = np.arange(len(query)) if q_rows is None else np.asarray(q_rows)
    g_rows = np.arange(len(gallery)) if g_rows is None else np.asarray(g_rows)
    num = min(config.eval.num_ranked_queries, len(q_rows))
    pick = np.linspace(0, len(q_rows) - 1, num=num).astype(int)
    dist = scorer.matrix(query_features[pick], gallery_features)
    top = np.argsort(dist, axis=1, kind="stable")[:, :_VIS_CANDIDATES]
    picked_cols = np.unique(top)
    q_idx, cols = q_rows[pick], g_rows[picked_cols]
    h, w = config.data.height, config.data.width
    return visualize.save_ranked_list(
        path,
        np.stack([pipeline.load_image(query, int(i), h, w, config.data.resize) for i in q_idx]),
        np.stack([pipeline.load_image(gallery, int(i), h, w, config.data.resize) for i in cols]),
        dist[:, picked_cols],
        query.person_ids[q_idx],
        gallery.person_ids[cols],
        query.camera_ids[q_idx],
        gallery.camera_ids[cols],
        np.arange(len(q_idx)),
        topk=10,
    )


def pair_rerank(scorer: Scorer, query_features: np.ndarray,
                gallery_features: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
    """k-reciprocal re-ranking on a pair network's scores: all (q + g)^2 pairs are
    scored, shifted to start at 0, then ``rerank.rerank_distances``."""
    both = np.concatenate([query_features, gallery_features])
    full = scorer.matrix(both, both)
    e = config.eval
    return rerank.rerank_distances(full - full.min(), query_features.shape[0], e.rerank_k1,
                                   e.rerank_k2, e.rerank_lambda)


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
    scorer = Scorer(model, variables, config, mesh)
    qf = scorer.represent(query, "embed query")
    gf = scorer.represent(gallery, "embed gallery")
    ids = (query.person_ids, gallery.person_ids, query.camera_ids, gallery.camera_ids)
    e = config.eval
    max_rank = min(50, len(gallery))
    common = dict(metric=e.metric, max_rank=max_rank, aqe_k=e.aqe_k)
    try:
        if scorer.pairwise:
            res = evaluate_lib.evaluate_blocks(scorer.blocks(qf, gf), *ids, max_rank=max_rank)
        else:
            res = evaluate_lib.evaluate_features(qf, gf, *ids, **common)
        out = scalars(res)
    except ValueError as e:  # e.g. no query has a match in the gallery
        raise errors.ReidError(
            f"cannot evaluate {query.name} against {gallery.name}: {e} Check config.data.query "
            "and config.data.gallery."
        ) from e
    if e.rerank and scorer.pairwise:
        rr = protocols.evaluate_market(pair_rerank(scorer, qf, gf, config), *ids, max_rank)
        out.update(scalars(rr, "rerank_"))
    elif e.rerank:
        rr = evaluate_lib.evaluate_features(
            qf, gf, *ids, rerank=True, k1=e.rerank_k1, k2=e.rerank_k2,
            lambda_value=e.rerank_lambda, **common,
        )
        out.update(scalars(rr, "rerank_"))
    if picture and config.eval.num_ranked_queries > 0:
        os.makedirs(os.path.dirname(picture) or ".", exist_ok=True)
        save_examples(picture, scorer, qf, gf, query, gallery, config)
    return out
