"""CAP: camera-aware proxies for unsupervised re-ID.

Wang, Lai, Huang, Gong and Hua, "Camera-aware Proxies for Unsupervised Person
Re-Identification", AAAI 2021 (official code: Terminator8758/CAP-master). Every round:
the pseudo labels of ``rounds.cluster``, each cluster split by camera into proxies
(``clustering/camera_proxies.py``), a proxy memory of their normalised centroids; the
epoch samples P proxies x K pictures. Every step: the intra-camera contrastive loss
and, from ``cap.crosscam_epoch``, the inter-camera loss against all proxies of the
cluster and the hardest proxies of other clusters; then the proxy memory moves with
this step's features (momentum 0.2).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from reid_jax import vectors
from reid_jax.clustering import camera_proxies, memory, pseudo_labels
from reid_jax.config_schema import Key
from reid_jax.train import loop, rounds, step
from reid_jax.train import state as state_lib

CONFIG = {
    "cluster": rounds.CONFIG,
    "cap": {
        "temperature": Key(camera_proxies.TEMPERATURE, "Softmax temperature (--inv_beta).",
                           low=1e-6),
        "momentum": Key(camera_proxies.MOMENTUM, "Proxy memory momentum (--inv_alpha).",
                        low=0.0, high=1.0),
        "hard_negatives": Key(camera_proxies.HARD_NEGATIVES, "Hardest other-cluster proxies "
                              "in the inter-camera loss (bg_knn).", low=1),
        "crosscam_epoch": Key(camera_proxies.CROSSCAM_EPOCH, "Round from which the "
                              "inter-camera loss is on.", low=0),
        "inter_weight": Key(camera_proxies.INTER_WEIGHT, "Weight of the inter-camera loss.",
                            low=0.0),
    },
}

@flax.struct.dataclass
class CAPState:
    """TrainState, the proxy memory and what each proxy is.

    Attributes:
      train: the common TrainState.
      memory: [capacity, D] L2-normalised proxies; rows beyond ``num_proxies`` zero.
      proxy_cluster: [capacity] cluster of each proxy, -1 beyond.
      proxy_camera: [capacity] camera of each proxy, -1 beyond.
      num_proxies: int32, proxies in use this round.
      round: int32, the pseudo-label round (= epoch).
    """

    train: state_lib.TrainState
    memory: jax.Array
    proxy_cluster: jax.Array
    proxy_camera: jax.Array
    num_proxies: jax.Array
    round: jax.Array


def make_train_step(s: rounds.Setup, config: ml_collections.ConfigDict) -> Any:
    """``train_step(state, batch, rng) -> (state, metrics)`` (unjitted); labels are proxies."""
    cp = config.cap

    def loss(cs: CAPState, params: dict, images: jax.Array, batch: dict, key: jax.Array) -> tuple:
        out, stats = s.fwd(params["model"], cs.train.batch_stats, images)
        intra, inter = camera_proxies.cap_losses(
            out["neck_features"], batch["label"], cs.memory, cs.proxy_cluster,
            cs.proxy_camera, cs.num_proxies, cp.temperature, cp.hard_negatives,
        )
        total = intra + jnp.where(cs.round >= cp.crosscam_epoch, cp.inter_weight * inter, 0.0)
        return total, {"batch_stats": stats, "features": out["neck_features"],
                       "metrics": {"intra_loss": intra, "inter_loss": inter}}

    def after(cs: CAPState, ok: jax.Array, aux: dict, batch: dict) -> tuple:
        f = vectors.l2_normalize(jax.lax.stop_gradient(aux["features"]))
        new_mem = memory.momentum_update(cs.memory, f, batch["label"], cp.momentum)
        return cs.replace(memory=state_lib.keep_if(ok, new_mem, cs.memory)), {}

    return step.gradient_step(s.fwd, s.tx, s.lr_fn, loss, after)


def build(ctx: loop.Context) -> loop.Trainer:
    """The CAP trainer for ``ctx.config``."""
    config = ctx.config
    s = rounds.setup(ctx, with_classifier=False)
    none = jnp.full((s.capacity,), -1, jnp.int32)
    state = CAPState(
        train=rounds.create_train_state(s),
        memory=jnp.zeros((s.capacity, s.dim), jnp.float32),
        proxy_cluster=none, proxy_camera=none,
        num_proxies=jnp.zeros((), jnp.int32), round=jnp.zeros((), jnp.int32),
    )
    eval_variables = state_lib.eval_variables

    def round_fn(host: CAPState, epoch: int) -> tuple[CAPState, np.ndarray, dict]:
        feats = rounds.embed(s, ctx, eval_variables(host), "neck_features",
                             f"round {epoch + 1}: embed")
        clus, stats = rounds.cluster(s, config, feats, epoch)
        labels, proxy_cluster, proxy_camera = camera_proxies.build_proxies(
            clus.labels, s.data.camera_ids
        )
        m = len(proxy_cluster)
        rounds.check_rows(m, "camera proxies", s.capacity, config, epoch)
        stats["num_proxies"] = m
        cent = pseudo_labels.centroids(feats, labels, m)
        pad = lambda a: np.concatenate([a, np.full(s.capacity - m, -1, np.int32)])  # noqa: E731
        host = host.replace(
            memory=memory.init_memory(cent, s.capacity), proxy_cluster=pad(proxy_cluster),
            proxy_camera=pad(proxy_camera), num_proxies=np.asarray(m, np.int32),
            round=np.asarray(epoch, np.int32),
        )
        return host, labels, stats

    train_step = make_train_step(s, config)
    return rounds.trainer(s, ctx, state, train_step, round_fn, eval_variables,
                          cross_camera=False)


validate = rounds.validate  # the clustering trainers' shared rules
