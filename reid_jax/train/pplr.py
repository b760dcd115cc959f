"""PPLR: part-based pseudo label refinement.

Cho, Kim, Kim and Yoon, "Part-based Pseudo Label Refinement for Unsupervised Person
Re-identification", CVPR 2022 (official code: yoonkicho/PPLR). The network gives a
global feature and 3 horizontal part features, each with a BNNeck and a bias-free
classifier (``models/parts.py``). Every round: pseudo labels from the global features,
all four classifiers re-initialised to the normalised cluster centroids, and the cross
agreement of each picture's global and part top-k neighbourhoods (k 20,
``clustering/cross_agreement.py``). Every step: PGLR on the global classifier (beta
0.5), AALS on the part classifiers (label-smoothed CE for the first ``pplr.aals_epoch``
rounds), soft triplet on the global feature.
"""

from __future__ import annotations

import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from reid_jax import errors
from reid_jax.clustering import cross_agreement, pseudo_labels
from reid_jax.config_schema import Key
from reid_jax.losses import contrastive
from reid_jax.train import loop, rounds, step
from reid_jax.train import state as state_lib

# PPLR CrossEntropyLabelSmooth default epsilon (parts, before AALS starts).
PART_LABEL_SMOOTHING = 0.1

CONFIG = {
    "cluster": rounds.CONFIG,
    "pplr": {
        "k": Key(20, "Top-k neighbourhoods of the cross agreement.", low=1),
        "beta": Key(0.5, "PGLR weight of the one-hot pseudo label.", low=0.0, high=1.0),
        "aals_epoch": Key(5, "Round from which the parts take AALS (before: smoothed CE).",
                          low=0),
    },
}


@flax.struct.dataclass
class PPLRState:
    """TrainState, the round's cross agreement, clusters and index.

    Attributes:
      train: the common TrainState.
      agreement: [N, P] cross-agreement scores of every training picture and part.
      num_clusters: int32, classifier columns in use this round.
      round: int32, the pseudo-label round (= epoch) the labels come from.
    """

    train: state_lib.TrainState
    agreement: jax.Array
    num_clusters: jax.Array
    round: jax.Array


def validate(config: ml_collections.ConfigDict) -> None:
    """PPLR needs the part network."""
    rounds.validate(config)
    if config.model.name != "part_net":
        raise errors.ReidError(
            f"config.model.name = {config.model.name!r}: PPLR needs part features; set "
            "model.name='part_net'."
        )


def make_train_step(s: rounds.Setup, config: ml_collections.ConfigDict) -> Any:
    """``train_step(state, batch, rng) -> (state, metrics)`` (unjitted)."""
    pc = config.pplr

    def loss(ps: PPLRState, params: dict, images: jax.Array, batch: dict, key: jax.Array) -> tuple:
        labels, n = batch["label"], ps.num_clusters
        ca = ps.agreement[batch["index"]]  # [B, P] scores of these pictures
        out, stats = s.fwd(params["model"], ps.train.batch_stats, images)
        terms = {
            "pglr_loss": cross_agreement.pglr(out["logits"], out["part_logits"], labels, ca, n,
                                              pc.beta),
            "triplet_loss": contrastive.soft_triplet(out["neck_features"], labels),
        }
        use_aals = ps.round >= pc.aals_epoch
        part_losses = [
            jnp.where(use_aals, cross_agreement.aals(lp, labels, ca[:, p], n),
                      contrastive.masked_cross_entropy(lp, labels, n, PART_LABEL_SMOOTHING))
            for p, lp in enumerate(jnp.moveaxis(out["part_logits"], 1, 0))
        ]
        terms["part_loss"] = jnp.mean(jnp.stack(part_losses))
        logits = contrastive.masked_logits(out["logits"], n)
        terms["train_acc"] = jnp.mean(jnp.argmax(logits, -1) == labels)
        total = terms["pglr_loss"] + terms["triplet_loss"] + terms["part_loss"]
        return total, {"batch_stats": stats, "metrics": terms}

    return step.gradient_step(s.fwd, s.tx, s.lr_fn, loss)


def build(ctx: loop.Context) -> loop.Trainer:
    """The PPLR trainer for ``ctx.config``."""
    config = ctx.config
    s = rounds.setup(ctx, with_classifier=True)
    num_parts = config.model.num_parts
    state = PPLRState(
        train=rounds.create_train_state(s),
        agreement=jnp.zeros((len(s.data), num_parts), jnp.float32),
        num_clusters=jnp.zeros((), jnp.int32),
        round=jnp.zeros((), jnp.int32),
    )
    eval_variables = state_lib.eval_variables

    def round_fn(host: PPLRState, epoch: int) -> tuple[PPLRState, np.ndarray, dict]:
        feats = rounds.embed(s, ctx, eval_variables(host), "all_features",
                             f"round {epoch + 1}: embed")  # [N, 1 + P, D]
        global_feats, part_feats = feats[:, 0], feats[:, 1:]
        clus, stats = rounds.cluster(s, config, global_feats, epoch)
        c = clus.num_clusters
        t1 = time.time()
        score = cross_agreement.cross_agreement(global_feats, part_feats, config.pplr.k)
        stats["agreement_seconds"] = time.time() - t1
        for p in range(score.shape[1]):
            stats[f"agreement_part{p}"] = float(score[:, p].mean())
        params = rounds.set_classifier(
            host.train.params, "model", "neck",
            pseudo_labels.centroids(global_feats, clus.labels, c),
        )
        part_cent = pseudo_labels.centroids(part_feats, clus.labels, c)  # [C, P, D]
        for p in range(num_parts):
            params = rounds.set_classifier(params, "model", f"part{p}_neck", part_cent[:, p])
        host = host.replace(
            train=host.train.replace(params=params), agreement=score,
            num_clusters=np.asarray(c, np.int32), round=np.asarray(epoch, np.int32),
        )
        return host, clus.labels, stats

    train_step = make_train_step(s, config)
    return rounds.trainer(s, ctx, state, train_step, round_fn, eval_variables)
