"""The evaluators a config declares (``config.eval.evaluators``), run by one function.

``--mode=eval`` is "restore, then run the evaluators"; the end of training, the
untrained baseline and the periodic evaluation run the same ones (big_vision style:
evaluators from the config). An explicit dict maps names to evaluators:

- ``retrieval``: ``data.query`` against ``data.gallery`` under the Market-1501 protocol
  (CMC, mAP, mINP; junk and same-camera matches removed), with the k-reciprocal
  re-ranked figures when ``eval.rerank`` and alpha-QE when ``eval.aqe_k``; it draws the
  ranked-list picture.
- ``splits``: the same on every dataset of ``eval.splits`` (the query/gallery of each
  of the small benchmarks' 10 random splits), reported as mean and std (MetaBIN's and
  the survey's protocol for GRID, VIPeR, PRID, iLIDS, CUHK01).
- ``cuhk03_classic``: the single-gallery-shot CMC of CUHK03's classic protocol
  (``eval.cuhk03_repeats`` random galleries with one picture per identity).
- ``single_shot``: one random picture per identity in the query and in the gallery
  (``eval.single_shot_draws`` draws), the Market protocol on that subset (the
  "single-shot" CMC of the small benchmarks, e.g. CUHK01 in Ahmed et al. 2015); with a
  pair network it scores only identities x identities pairs.
- ``video``: video-to-video: one feature per tracklet (a video network's clips
  averaged, or an image network's frames pooled, ``eval.video_pooling``), then the
  Market-style protocol on tracklets (MARS and the other video builders);
- ``image_to_video``: the first frame of each query tracklet as a picture (TKP's image
  network for TKP) against the gallery tracklets (``reid_jax/evaluation/video.py``).

Distances come from features and ``eval.metric``, or from a pair network's own scores
(``retrieval.Scorer``); every evaluator except the two video ones takes either.

Every evaluator returns a flat dict of scalars (fractions in [0, 1]); ``splits`` also
returns its per-split rows for the printed table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from reid_jax import errors
from reid_jax.data import sources
from reid_jax.evaluation import cuhk03, pairs, retrieval, splits, video
from reid_jax.evaluation import evaluate as evaluate_lib

SCALARS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


class Evaluators:
    """The configured evaluators, with their test sets opened once per run.

    Args:
      config: the run's config (``eval`` and ``data`` sections).
      mesh: the device mesh the features are computed on.
    """

    def __init__(self, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> None:
        self.config = config
        self.mesh = mesh
        self._splits: dict[str, sources.ReidData] = {}
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per evaluation (one set of variables): what two evaluators
        share, such as the gallery tracklets' features of V2V and I2V."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def split(self, spec: str) -> sources.ReidData:
        """The test split named by ``spec`` ('split' or 'dataset:split'), opened once."""
        if spec not in self._splits:
            d = self.config.data
            self._splits[spec] = sources.open_data(
                sources.parse_specs(spec, d.dataset), d.data_dir, relabel=False
            )
        return self._splits[spec]

    def __call__(
        self, model: nn.Module, variables: Any, picture: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Runs every evaluator of ``config.eval.evaluators`` on ``variables``.

        Args:
          model: the network (``apply(variables, x, train=False)``).
          variables: its evaluation variables.
          picture: where the ranked-list PNG goes (retrieval evaluators), or None.

        Returns:
          {evaluator name: its results}.
        """
        self._memo = {}
        try:
            return {
                name: EVALUATORS[name](self, model, variables, picture)
                for name in self.config.eval.evaluators
            }
        finally:
            self._memo = {}


def _market(
    ev: Evaluators, model: nn.Module, variables: Any, query_spec: str, gallery_spec: str,
    picture: str | None,
) -> dict[str, float]:
    query, gallery = ev.split(query_spec), ev.split(gallery_spec)
    return retrieval.evaluate(model, variables, query, gallery, ev.config, ev.mesh, picture)


def evaluate_retrieval(
    ev: Evaluators, model: nn.Module, variables: Any, picture: str | None
) -> dict[str, float]:
    """``data.query`` against ``data.gallery`` (see the module docstring)."""
    return _market(ev, model, variables, ev.config.data.query, ev.config.data.gallery, picture)


def evaluate_splits(
    ev: Evaluators, model: nn.Module, variables: Any, picture: str | None
) -> dict[str, Any]:
    """Every dataset of ``eval.splits``: per-split results, their mean and std."""
    names = [n.strip() for n in ev.config.eval.splits.split(",") if n.strip()]
    if not names:
        raise errors.ReidError(
            "the 'splits' evaluator needs config.eval.splits (comma-separated datasets, "
            "e.g. grid/s0,...,grid/s9)."
        )
    per_split = [
        _market(ev, model, variables, f"{n}:query", f"{n}:gallery", picture if i == 0 else None)
        for i, n in enumerate(names)
    ]
    mean = splits.aggregate_splits(per_split)
    out: dict[str, Any] = {k: v for k, v in mean.items() if not k.startswith("cmc")}
    out["rows"] = list(zip(names, per_split))
    return out


def _test_sets(ev: Evaluators, model: nn.Module, variables: Any, what: str) -> tuple:
    """(query, gallery, scorer, their representations) of ``data.query`` / ``data.gallery``."""
    c = ev.config
    query, gallery = ev.split(c.data.query), ev.split(c.data.gallery)
    scorer = retrieval.Scorer(model, variables, c, ev.mesh)
    qf = scorer.represent(query, f"embed query{what}")
    gf = scorer.represent(gallery, f"embed gallery{what}")
    return query, gallery, scorer, qf, gf


def evaluate_cuhk03_classic(
    ev: Evaluators, model: nn.Module, variables: Any, picture: str | None
) -> dict[str, float]:
    """CUHK03 classic single-gallery-shot CMC, full-gallery mAP / mINP."""
    c = ev.config
    query, gallery, scorer, qf, gf = _test_sets(ev, model, variables, "")
    dist = scorer.matrix(qf, gf)
    res = cuhk03.evaluate_cuhk03_classic(
        dist, query.person_ids, gallery.person_ids, query.camera_ids, gallery.camera_ids,
        max_rank=min(50, len(gallery)), num_repeats=c.eval.cuhk03_repeats, seed=c.seed,
    )
    return retrieval.scalars(res)


def evaluate_single_shot(
    ev: Evaluators, model: nn.Module, variables: Any, picture: str | None
) -> dict[str, float]:
    """Single-shot: one random query and one random gallery picture per identity, the
    Market protocol on that subset; mean and std over ``eval.single_shot_draws`` draws
    (seeded by the config's seed and the draw)."""
    c = ev.config
    query, gallery, scorer, qf, gf = _test_sets(ev, model, variables, "")
    rows = []
    for r in range(c.eval.single_shot_draws):
        rng = np.random.default_rng([c.seed, r])
        qi = splits.one_per_identity(query.person_ids, rng)
        gi = splits.one_per_identity(gallery.person_ids, rng)
        ids = (query.person_ids[qi], gallery.person_ids[gi], query.camera_ids[qi],
               gallery.camera_ids[gi])
        try:
            res = evaluate_lib.evaluate_blocks(scorer.blocks(qf[qi], gf[gi]), *ids,
                                               max_rank=min(50, len(gi)))
        except ValueError as e:
            raise errors.ReidError(
                f"cannot evaluate {query.name} against {gallery.name}: {e}") from e
        rows.append(res)
        if picture and r == 0 and c.eval.num_ranked_queries > 0:
            retrieval.save_examples(picture, scorer, qf[qi], gf[gi], query, gallery, c,
                                    q_rows=qi, g_rows=gi)
    out = splits.aggregate_splits(rows)
    return {k: v for k, v in out.items() if np.isscalar(v)}


def _video_protocol(
    ev: Evaluators, model: nn.Module, variables: Any, picture: str | None, queries: str,
) -> dict[str, float]:
    """V2V (``queries='tracklets'``) or I2V (``'first_frames'``) on data.query/gallery."""
    c = ev.config
    if pairs.is_pairwise(model):
        raise errors.ReidError(
            "the video evaluators pool frame features; a pair network has none: use "
            "eval.evaluators=('retrieval',) on frames or an embedding model.")
    query, gallery = ev.split(c.data.query), ev.split(c.data.gallery)
    if queries == "tracklets":
        q = ev.memo(f"tracklets:{c.data.query}", lambda: video.embed_tracklets(
            model, variables, query, c, ev.mesh, "embed query tracklets"))
    else:
        q = video.embed_first_frames(model, variables, query, c, ev.mesh, "embed query pictures")
    g = ev.memo(f"tracklets:{c.data.gallery}", lambda: video.embed_tracklets(
        model, variables, gallery, c, ev.mesh, "embed gallery tracklets"))
    try:
        res = video.evaluate_embedded(q, g, c)
    except ValueError as e:
        raise errors.ReidError(f"cannot evaluate {query.name} against {gallery.name}: {e}") from e
    if picture and c.eval.num_ranked_queries > 0:
        video.save_ranked_list(picture, q, g, query, gallery, c)
    return retrieval.scalars(res)


def evaluate_video(
    ev: Evaluators, model: nn.Module, variables: Any, picture: str | None
) -> dict[str, float]:
    """Video-to-video: query tracklets against gallery tracklets."""
    return _video_protocol(ev, model, variables, picture, "tracklets")


def evaluate_image_to_video(
    ev: Evaluators, model: nn.Module, variables: Any, picture: str | None
) -> dict[str, float]:
    """Image-to-video: each query tracklet's first frame against gallery tracklets."""
    return _video_protocol(ev, model, variables, picture, "first_frames")


EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "retrieval": evaluate_retrieval,
    "splits": evaluate_splits,
    "cuhk03_classic": evaluate_cuhk03_classic,
    "single_shot": evaluate_single_shot,
    "video": evaluate_video,
    "image_to_video": evaluate_image_to_video,
}


def log_scalars(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """One flat dict for the metric writer: the first evaluator's scalars as they are
    ('rank1', 'mAP', ...), the others' prefixed with their name ('splits/mAP')."""
    out = {}
    for i, (name, res) in enumerate(results.items()):
        prefix = "" if i == 0 else f"{name}/"
        out.update({prefix + k: float(v) for k, v in res.items() if np.isscalar(v)})
    return out


def primary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The first declared evaluator's results (the before/after table's row)."""
    return next(iter(results.values()))
