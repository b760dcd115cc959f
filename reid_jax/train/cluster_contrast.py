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
import optax

from reid_jax import sharding
from reid_jax.clustering import memory, pseudo_labels
from reid_jax.config_schema import Key
from reid_jax.data import augment
from reid_jax.evaluation import distance
from reid_jax.losses import contrastive
from reid_jax.train import forward, loop, rounds
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


def validate(config: ml_collections.ConfigDict) -> None:
    """The clustering trainers' shared rules."""
    rounds.validate(config)


def make_train_step(
    model: Any, tx: optax.GradientTransformation, lr_fn: optax.Schedule,
    config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh,
) -> Any:
    """Jitted ``train_step(state, batch, rng) -> (state, metrics)``."""
    aug_cfg = config.aug.to_dict()
    cc = config.contrast
    update = memory.hard_update if cc.use_hard else memory.momentum_update
    group = config.train.bn_group_size

    def train_step(cs: ContrastState, batch: dict, rng: jax.Array) -> tuple[ContrastState, dict]:
        st = cs.train
        images = augment.augment_batch(jax.random.fold_in(rng, st.step), batch["image"], aug_cfg)
        labels = batch["label"]

        def loss_fn(params: dict) -> tuple[jax.Array, tuple[jax.Array, Any]]:
            out, stats = forward.apply_train(model, params["model"], st.batch_stats, images, group)
            f = out["neck_features"]
            loss = contrastive.cluster_nce(f, cs.memory, labels, cs.num_clusters, cc.temperature)
            return loss, (f, stats)

        (loss, (f, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(st.params)
        new_train, ok = st.apply_gradients(tx, grads, loss, stats)
        # The memory moves with this forward's features, after the loss used the old
        # memory (the reference updates it in CM.backward).
        f = distance.l2_normalize(jax.lax.stop_gradient(f))
        new_mem = state_lib.keep_if(ok, update(cs.memory, f, labels, cc.momentum), cs.memory)
        logits = contrastive.memory_logits(f, cs.memory, cs.num_clusters, cc.temperature)
        metrics = {
            "loss": loss,
            "train_acc": jnp.mean(jnp.argmax(logits, -1) == labels),
            "lr": lr_fn(st.step),
            "grad_norm": state_lib.grad_norm(grads),
        }
        return cs.replace(train=new_train, memory=new_mem), metrics

    return sharding.jit_train_step(train_step, mesh)


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

    step = make_train_step(s.model, s.tx, s.lr_fn, config, ctx.mesh)
    return rounds.trainer(s, ctx, state, step, round_fn, eval_variables)
