"""Cluster contrast: unsupervised re-ID with a cluster memory.

Dai, Wang, Zhang, Zhou, Li and Zhu, "Cluster Contrast for Unsupervised Person
Re-Identification", ACCV 2022 (official code: alibaba/cluster-contrast-reid). Every
round: the pseudo labels of ``rounds.cluster``, a memory of the L2-normalised cluster
centroids (``clustering/memory.py``); every step: ClusterNCE over ``f . M^T / tau``
(tau 0.05), then the memory moves with this step's features, sample by sample
(M[y] <- m M[y] + (1 - m) f, renormalised, m 0.1; ``CM.backward``) or with the
hardest instance of each class (``contrast.use_hard``, ``CM_Hard``).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from reid_jax import vectors
from reid_jax.clustering import memory, pseudo_labels
from reid_jax.config_schema import Key
from reid_jax.losses import contrastive
from reid_jax.train import loop, rounds, step
from reid_jax.train import state as state_lib

CONFIG = {
    "cluster": rounds.CONFIG,
    "contrast": {
        "momentum": Key(0.1, "Memory momentum m (README command --momentum 0.1).",
                        low=0.0, high=1.0),
        "temperature": Key(0.05, "ClusterNCE temperature.", low=1e-6),
        "use_hard": Key(False, "Hard-instance memory update (CM_Hard)."),
    },
}

validate = rounds.validate  # the clustering trainers' shared rules


@flax.struct.dataclass
class ContrastState:
    """TrainState, the cluster memory and the round's number of clusters.

    Attributes:
      train: the common TrainState.
      memory: [capacity, D] L2-normalised centroids; rows beyond ``num_clusters`` zero.
      num_clusters: int32, memory rows in use this round.
    """

    train: state_lib.TrainState
    memory: jax.Array
    num_clusters: jax.Array


def make_train_step(s: rounds.Setup, config: ml_collections.ConfigDict) -> Any:
    """``train_step(state, batch, rng) -> (state, metrics)`` (unjitted)."""
    cc = config.contrast
    update = memory.hard_update if cc.use_hard else memory.momentum_update

    def loss(cs: ContrastState, params: dict, images: jax.Array, batch: dict, key: jax.Array) -> tuple:
        out, stats = s.fwd(params["model"], cs.train.batch_stats, images)
        f = out["neck_features"]
        nce = contrastive.cluster_nce(f, cs.memory, batch["label"], cs.num_clusters,
                                      cc.temperature)
        return nce, {"batch_stats": stats, "metrics": {}, "features": f}

    def after(cs: ContrastState, ok: jax.Array, aux: dict, batch: dict) -> tuple:
        # The memory moves with this forward's features, after the loss used the old
        # memory (the reference updates it in CM.backward).
        f = vectors.l2_normalize(jax.lax.stop_gradient(aux["features"]))
        labels = batch["label"]
        logits = contrastive.memory_logits(f, cs.memory, cs.num_clusters, cc.temperature)
        new_mem = state_lib.keep_if(ok, update(cs.memory, f, labels, cc.momentum), cs.memory)
        return cs.replace(memory=new_mem), {
            "train_acc": jnp.mean(jnp.argmax(logits, -1) == labels)}

    return step.gradient_step(s.fwd, s.tx, s.lr_fn, loss, after)


def build(ctx: loop.Context) -> loop.Trainer:
    """The cluster-contrast trainer for ``ctx.config``."""
    config = ctx.config
    s = rounds.setup(ctx, with_classifier=False)
    state = ContrastState(
        train=rounds.create_train_state(s),
        memory=jnp.zeros((s.capacity, s.dim), jnp.float32),
        num_clusters=jnp.zeros((), jnp.int32),
    )
    eval_variables = state_lib.eval_variables

    def round_fn(host: ContrastState, epoch: int) -> tuple[ContrastState, np.ndarray, dict]:
        feats = rounds.embed(s, ctx, eval_variables(host), "neck_features",
                             f"round {epoch + 1}: embed")
        clus, stats = rounds.cluster(s, config, feats, epoch)
        cent = pseudo_labels.centroids(feats, clus.labels, clus.num_clusters)
        host = host.replace(memory=memory.init_memory(cent, s.capacity),
                            num_clusters=np.asarray(clus.num_clusters, np.int32))
        return host, clus.labels, stats

    train_step = make_train_step(s, config)
    return rounds.trainer(s, ctx, state, train_step, round_fn, eval_variables)
