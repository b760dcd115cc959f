"""What every clustering method shares: hidden labels, the pseudo-label round, the epoch.

Unsupervised re-ID methods (cluster contrast, PPLR, CAP, MMT; one module each)
alternate, every epoch, a pseudo-label round and an epoch of training on the clustered
pictures. The identity labels of the training split are never used to train: they are
hidden when the data is opened (``open_unlabeled``) and kept aside only to log cluster
diagnostics (NMI, purity, camera purity).

A method's round is written with the helpers here: ``embed`` (eval-mode L2-normalised
features of every training picture), ``cluster`` (camera standardisation if asked,
Jaccard + DBSCAN / k-means / k-NN components, the count checks and diagnostics), then
its own preparation (memory, classifiers, proxies, agreement). ``trainer`` wraps a
method's round and step into the loop's ``Trainer``: the round runs in
``prepare_epoch``, followed by P x K batches of pseudo identities.

Shapes stay fixed across rounds so the step compiles once: memories and classifiers
have ``cluster.max_clusters`` rows (0 = one per training picture, the upper bound) and
the round's number of clusters masks the rest. The next round is a deterministic
function of the parameters (eval-mode features, seeded clustering) and the sampler is
seeded by (seed, epoch), so a run resumed at an epoch's start recomputes exactly what an
uninterrupted one would; a run resumed mid-epoch takes the round's labels from its
checkpoint (``resume_epoch``) instead of clustering the half-trained network.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from reid_jax import distributed, errors, sharding, vectors
from reid_jax.clustering import pseudo_labels
from reid_jax.config_schema import Key, is_
from reid_jax.data import samplers, sources
from reid_jax.evaluation import embed as embed_lib
from reid_jax.models import zoo
from reid_jax.train import forward, init, loop, optim
from reid_jax.train import state as state_lib

# config.cluster, declared once (every clustering trainer reads it).
CONFIG = {
    "method": Key("dbscan", "Pseudo labeler; 'oracle' takes the hidden identities (a "
                  "diagnostic upper bound, supervised: never report it as the method).",
                  choices=(*pseudo_labels.METHODS, pseudo_labels.ORACLE)),
    "k1": Key(30, "Jaccard k1 (compute_jaccard_distance(k1=30, k2=6)).", low=1,
              when=is_("cluster.method", "dbscan"), when_doc="cluster.method='dbscan'"),
    "k2": Key(6, "Jaccard k2 (local query expansion).", low=1,
              when=is_("cluster.method", "dbscan"), when_doc="cluster.method='dbscan'"),
    "eps": Key(0.6, "DBSCAN eps on the Jaccard distance.", low=0.0, high=1.0,
               when=is_("cluster.method", "dbscan"), when_doc="cluster.method='dbscan'"),
    "min_samples": Key(4, "DBSCAN min_samples / smallest k-NN component.", low=1,
                       when=is_("cluster.method", "dbscan", "knn"),
                       when_doc="cluster.method='dbscan' or 'knn'"),
    "num_clusters": Key(500, "k-means clusters.", low=1, when=is_("cluster.method", "kmeans"),
                        when_doc="cluster.method='kmeans'"),
    "kmeans_n_init": Key(10, "k-means restarts (scikit-learn's default when MMT was "
                         "published).", low=1, when=is_("cluster.method", "kmeans"),
                         when_doc="cluster.method='kmeans'"),
    "knn_k": Key(10, "Mutual-neighbour list length of the 'knn' labeler.", low=1,
                 when=is_("cluster.method", "knn"), when_doc="cluster.method='knn'"),
    "max_clusters": Key(0, "Memory / classifier rows; 0 = one per training picture.", low=0),
    "camera_standardize": Key(False, "Standardise features per camera before clustering "
                              "(not in the references; see clustering/pseudo_labels.py)."),
}


def validate(config: ml_collections.ConfigDict) -> None:
    """Rules every clustering trainer shares."""
    d = config.data
    if d.k < 2:
        raise errors.ReidError(
            f"config.data.k = {d.k}: pseudo identities need K >= 2 pictures per batch."
        )
    forward.check_bn_groups(config, d.p * d.k)
    if config.model.init_from_run and config.trainer != "mmt" and len(init.init_runs(config)) > 1:
        raise errors.ReidError("config.model.init_from_run names one source run here.")


@dataclasses.dataclass
class Setup:
    """The parts of a clustering run every method needs.

    Attributes:
      model: the network (classifier rows = ``capacity`` when the method has one).
      data: the training pictures with their labels hidden (-1).
      true_ids: the hidden identities (diagnostics only).
      capacity: memory / classifier rows.
      steps: batches per epoch.
      tx, lr_fn: the optax transform and its schedule (over ``params``).
      params, batch_stats: the network's initial variables ({'model': ...}).
      dim: feature dimension of 'neck_features'.
      fwd: the training forward (augmentation, BatchNorm groups).
    """

    model: nn.Module
    data: sources.ReidData
    true_ids: np.ndarray
    capacity: int
    steps: int
    tx: optax.GradientTransformation
    lr_fn: optim.Schedule
    params: dict
    batch_stats: Any
    dim: int
    fwd: forward.Forward


def setup(
    ctx: loop.Context, with_classifier: bool,
    variables: Callable[[nn.Module, jax.Array], tuple[dict, Any]] | None = None,
) -> Setup:
    """Hidden-label data, the network, its initial variables and the optimizer.

    Args:
      ctx: the loop's context.
      with_classifier: the network has a classifier of ``capacity`` rows (PPLR, MMT).
      variables: ``(model, rng) -> (params, batch_stats)`` when the method builds its
        parameter tree itself (MMT's two students); default one network ('model').
    """
    config = ctx.config
    train = sources.open_train(config.data)
    hidden = np.full(len(train), -1, np.int32)
    data = dataclasses.replace(train, labels=hidden, person_ids=hidden)
    d = config.data
    if (d.p * d.k) % ctx.mesh.size:
        raise errors.ReidError(
            f"batch P x K = {d.p * d.k} is not divisible by the {ctx.mesh.size} devices."
        )
    capacity = int(config.cluster.max_clusters or len(train))
    model = zoo.build_model(config.model, capacity if with_classifier else 0)
    rng = jax.random.key(config.seed)
    if variables is None:
        net, stats = init.model_variables(model, config, rng, load=not ctx.for_eval)
        params, batch_stats = {"model": net}, stats
    else:
        params, batch_stats = variables(model, rng)
    steps = d.steps_per_epoch or max(1, len(train) // (d.p * d.k))
    tx, lr_fn = optim.make_optimizer(config.optim, params, steps, config.train.num_epochs)
    x = jax.ShapeDtypeStruct((1, d.height, d.width, 3), jnp.float32)
    stats_one = batch_stats["model"] if variables is not None else batch_stats  # MMT: per net
    dim = jax.eval_shape(lambda v, x: model.apply(v, x, train=False),
                         {"params": params["model"], "batch_stats": stats_one}, x
                         )["neck_features"].shape[-1]
    return Setup(model, data, train.person_ids.copy(), capacity, steps, tx, lr_fn, params,
                 batch_stats, dim, forward.Forward.from_config(model, config))


def embed(
    s: Setup, ctx: loop.Context, variables: Any, feature: str, desc: str
) -> np.ndarray:
    """Eval-mode features of every training picture, L2-normalised over the last axis."""
    c = ctx.config
    fn = embed_lib.make_embed_fn(s.model, ctx.mesh, feature, flip=False)
    f = embed_lib.extract_features(
        fn, variables, s.data, ctx.mesh, c.eval.batch_size, c.data.height, c.data.width,
        c.data.num_threads, desc=desc, progress=c.train.progress, resize=c.data.resize,
    )
    return vectors.l2_normalize_np(f)


def cluster(
    s: Setup, config: ml_collections.ConfigDict, feats: np.ndarray, epoch: int
) -> tuple[pseudo_labels.Clustering, dict[str, float]]:
    """Pseudo labels of the round from global features, with the round's diagnostics."""
    if config.cluster.camera_standardize:
        feats = pseudo_labels.camera_standardize(feats, s.data.camera_ids)
    if config.cluster.method == pseudo_labels.ORACLE:
        clus = pseudo_labels.oracle(s.true_ids)
    else:
        clus = pseudo_labels.pseudo_labels(feats, config.cluster, seed=config.seed + epoch)
    check_rows(clus.num_clusters, "clusters", s.capacity, config, epoch)
    stats = {"round": epoch + 1, "num_clusters": clus.num_clusters,
             "num_outliers": clus.num_outliers}
    stats.update({f"{k}_seconds": v for k, v in clus.seconds.items()})
    stats.update(pseudo_labels.cluster_quality(clus.labels, s.true_ids, s.data.camera_ids))
    return clus, stats


def check_rows(rows: int, what: str, capacity: int, config: ml_collections.ConfigDict,
               epoch: int) -> None:
    """Raises ReidError when a round's clusters (or proxies) do not fit or are too few."""
    if rows > capacity:
        raise errors.ReidError(
            f"round {epoch + 1} made {rows} {what}, more than cluster.max_clusters = "
            f"{capacity}; raise --config.cluster.max_clusters."
        )
    if rows < config.data.p:
        raise errors.ReidError(
            f"round {epoch + 1} found {rows} {what}, fewer than data.p = {config.data.p} "
            "pseudo identities per batch; raise --config.cluster.eps or lower data.p."
        )


def set_classifier(params: dict, net: str, module: str, centroids: np.ndarray) -> dict:
    """``params`` with the first C columns of ``params[net][module]``'s classifier set to
    the [C, D] centroids (PPLR, MMT: classifiers re-initialised every round)."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
    key = (net, module, "classifier", "kernel")
    kernel = np.array(flat[key])  # [D, capacity]
    kernel[:, : centroids.shape[0]] = centroids.T
    flat[key] = kernel
    return flax.traverse_util.unflatten_dict(flat)


def summary(epoch: int, stats: dict[str, float]) -> str:
    """The line printed after a round."""
    extra = "".join(f", {k} {v:.3f}" for k, v in stats.items() if k.startswith("agreement_p"))
    return (
        f"round {epoch + 1}: {stats['num_clusters']} clusters, {stats['num_outliers']} "
        f"outliers, NMI {stats['nmi']:.3f}, purity {stats['purity']:.3f}, camera purity "
        f"{stats['camera_purity']:.3f}{extra}"
    )


RoundFn = Callable[[Any, int], tuple[Any, np.ndarray, dict[str, float]]]


def trainer(
    s: Setup, ctx: loop.Context, state: Any, train_step: Any, round_fn: RoundFn,
    eval_variables: Callable[[Any], Any], cross_camera: bool = True,
) -> loop.Trainer:
    """The loop's Trainer of a clustering method.

    Args:
      s: the setup.
      ctx: the loop's context.
      state: the initial host state (its ``train`` field a TrainState).
      train_step: the (unjitted) step; jitted here over the mesh.
      round_fn: ``(host state, epoch) -> (host state, [N] epoch labels with -1 for pictures
        left out, round stats)``: the method's pseudo-label round.
      eval_variables: the variables the evaluators apply.
      cross_camera: the 'cluster_uniform' sampler takes K-1 companions of an anchor from
        other cameras (cluster contrast, PPLR); False: K pictures of the label (CAP).
    """
    config, mesh = ctx.config, ctx.mesh
    d = config.data

    def resume_epoch(st: Any, epoch: int, labels: np.ndarray,
                     stats: dict[str, float] | None = None) -> loop.Epoch:
        # Steps: fixed (--iters), or the clustered pictures // batch of this round (CAP).
        steps = d.steps_per_epoch or max(1, int((labels >= 0).sum()) // (d.p * d.k))
        batches = samplers.epoch_batches(d.sampler, labels, s.data.camera_ids, d.p, d.k,
                                         config.seed, epoch, steps, cross_camera)
        return loop.Epoch(st, dataclasses.replace(s.data, labels=labels), batches, stats,
                          summary(epoch, stats) if stats is not None else "")

    def prepare_epoch(st: Any, epoch: int) -> loop.Epoch:
        t0 = time.time()
        host, labels, stats = round_fn(jax.device_get(st), epoch)
        # Every process clustered the same gathered features; process 0's labels are
        # the round's, so that no host arithmetic can make the processes' labels differ.
        labels = distributed.broadcast(labels)
        stats["round_seconds"] = time.time() - t0
        return resume_epoch(sharding.replicate(host, mesh), epoch, labels, stats)

    return loop.Trainer(s.model, sharding.replicate(state, mesh),
                        sharding.jit_train_step(train_step, mesh), prepare_epoch, eval_variables,
                        resume_epoch=resume_epoch)


def create_train_state(s: Setup) -> state_lib.TrainState:
    """The TrainState at step 0 over ``s.params``."""
    return state_lib.TrainState.create(s.params, s.batch_stats, s.tx.init(s.params))
