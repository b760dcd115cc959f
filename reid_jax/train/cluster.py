"""Clustering-based unsupervised re-ID: cluster contrast, PPLR, CAP and MMT.

Both methods alternate, every epoch, a pseudo-label round and an epoch of training on
the clustered images (identity labels of the training split are never used; the true
identities are read only to log cluster NMI/purity as a diagnostic):

* round: embed every training image (eval mode, L2-normalised BNNeck features), Jaccard
  distance + DBSCAN (``reid_jax/clustering/pseudo_labels.py``), outliers dropped;
* cluster contrast (Dai et al., "Cluster Contrast for Unsupervised Person
  Re-Identification", ACCV 2022): a cluster memory of normalised centroids, ClusterNCE
  over ``f . M^T / 0.05``, the memory updated after each step sample by sample
  (``reid_jax/clustering/memory.py``), or with the hardest instance per class;
* PPLR (Cho et al., "Part-based Pseudo Label Refinement for Unsupervised Person
  Re-identification", CVPR 2022): global + 3 part features (``models/parts.py``),
  classifiers re-initialised to the normalised centroids each round, cross agreement of
  global and part top-20 neighbourhoods once per round, PGLR on the global classifier,
  AALS on the parts (label-smoothed CE for the first 5 epochs), soft triplet on the
  global feature (``reid_jax/clustering/cross_agreement.py``);
* CAP (Wang et al., "Camera-aware Proxies for Unsupervised Person Re-Identification",
  AAAI 2021): clusters split by camera into proxies, a proxy memory, intra-camera
  contrastive loss plus (from epoch 5) an inter-camera loss against all proxies of the
  cluster and the hardest proxies of other clusters (``clustering/camera_proxies.py``);
* MMT (Ge et al., "Mutual Mean-Teaching: Pseudo Label Refinery for Unsupervised Domain
  Adaptation on Person Re-identification", ICLR 2020): two students and their EMA mean
  teachers (alpha 0.999), k-means pseudo labels on the teachers' averaged features,
  classifiers set to the centroids each round; each student learns from the pseudo
  labels (label-smoothed CE, soft-margin triplet) and from the *other* student's
  teacher (soft CE weight 0.5, soft triplet weight 0.8), on two augmented views.

Shapes stay fixed across rounds so the step compiles once: the memory and the
classifiers have ``cluster.max_clusters`` rows (0 = one per training image, the upper
bound) and the round's ``num_clusters`` masks the rest.

State and resumption: a ``ClusterState`` holds the TrainState, the memory, the round's
cross-agreement table, the number of clusters and the round (= epoch) index; it is
checkpointed at epoch ends with the round in the metadata. The next round's labels,
memory and classifiers are a deterministic function of the parameters (eval-mode
features, seeded clustering), so a resumed run recomputes exactly what an uninterrupted
run would, and the sampler is seeded by (seed, epoch).

Read top to bottom: state, model, steps, round, loop, evaluation.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from reid_jax import checkpoint, errors, reporting, sharding
from reid_jax.clustering import camera_proxies, cross_agreement, memory, pseudo_labels
from reid_jax.data import augment, pipeline, samplers, sources
from reid_jax.evaluation import distance, embed, retrieval
from reid_jax.losses import contrastive
from reid_jax.train import optim, supervised
from reid_jax.train import state as state_lib

METHODS = ("cluster_contrast", "pplr", "cap", "mmt")
# PPLR CrossEntropyLabelSmooth default epsilon (parts, first aals_epoch epochs).
PART_LABEL_SMOOTHING = 0.1


# ----------------------------------------------------------------------------- state
@flax.struct.dataclass
class ClusterState:
    """Everything a clustering step reads and writes.

    Attributes:
      train: the TrainState (step, params, batch_stats, opt_state, nonfinite_step).
      memory: [capacity, D] cluster memory (cluster contrast) or proxy memory (CAP);
        [1, 1] otherwise.
      agreement: [N, P] cross-agreement scores of the round (PPLR); [1, 1] otherwise.
      proxy_cluster: [capacity] cluster of each proxy, -1 beyond (CAP); [1] otherwise.
      proxy_camera: [capacity] camera of each proxy (CAP); [1] otherwise.
      num_clusters: int32, rows of the memory / classifiers in use this round (clusters;
        proxies for CAP).
      round: int32, the pseudo-label round (= epoch) the labels come from.
      ema: MMT mean teachers {'params': {'model', 'model2'}, 'batch_stats': ...};
        a [1] placeholder otherwise. (MMT's students are params['model'] and
        params['model2'] of ``train``.)
    """

    train: state_lib.TrainState
    memory: jax.Array
    agreement: jax.Array
    proxy_cluster: jax.Array
    proxy_camera: jax.Array
    num_clusters: jax.Array
    round: jax.Array
    ema: Any


def _method(config: ml_collections.ConfigDict) -> str:
    if config.trainer not in METHODS:
        raise errors.ReidError(
            f"config.trainer {config.trainer!r} is not a clustering method; "
            f"choose one of {', '.join(METHODS)}."
        )
    return config.trainer


def capacity(config: ml_collections.ConfigDict, num_train: int) -> int:
    """Rows of the memory / classifiers: cluster.max_clusters, or one per image."""
    return int(config.cluster.max_clusters or num_train)


# ----------------------------------------------------------------------------- model
def create_state(
    config: ml_collections.ConfigDict, num_train: int, steps_per_epoch: int, mesh: jax.sharding.Mesh
) -> tuple[nn.Module, ClusterState, optax.GradientTransformation, optax.Schedule]:
    """Model, replicated initial ClusterState, optax transform and schedule."""
    method = _method(config)
    cap = capacity(config, num_train)
    num_classes = cap if method in ("pplr", "mmt") else 0
    model = supervised.build_model(config, num_classes)
    params, batch_stats = supervised.init_variables(
        model, config, num_classes, jax.random.key(config.seed)
    )
    if config.model.get("init_from"):
        from reid_jax.models import load_torch  # optional: only when importing weights

        params["model"], batch_stats = load_torch.load_into(
            config.model.init_from, params["model"], batch_stats
        )
    ema = jnp.zeros((1,), jnp.float32)
    if method == "mmt":
        # Two students from different initialisations (MMT starts them from two
        # source-domain models trained with different seeds); teachers start as copies.
        params2, stats2 = supervised.init_variables(
            model, config, num_classes, jax.random.key(config.seed + 10_000)
        )
        if config.model.get("init_from"):
            params2, stats2 = {"model": params["model"]}, batch_stats
        params = {"model": params["model"], "model2": params2["model"]}
        batch_stats = {"model": batch_stats, "model2": stats2}
        ema = {"params": params, "batch_stats": batch_stats}
    tx, lr_fn = optim.make_optimizer(config.optim, params, steps_per_epoch, config.train.num_epochs)
    x = jax.ShapeDtypeStruct((1, config.data.height, config.data.width, 3), jnp.float32)
    out = jax.eval_shape(
        functools.partial(model.apply, train=False),
        {"params": params["model"],
         "batch_stats": batch_stats["model"] if method == "mmt" else batch_stats}, x,
    )
    dim = out["neck_features"].shape[-1]
    num_parts = config.model.get("num_parts", 0) if method == "pplr" else 0
    cstate = ClusterState(
        train=state_lib.TrainState.create(params, batch_stats, tx.init(params)),
        memory=jnp.zeros((cap, dim) if method in ("cluster_contrast", "cap") else (1, 1), jnp.float32),
        agreement=jnp.zeros((num_train, num_parts) if num_parts else (1, 1), jnp.float32),
        proxy_cluster=jnp.full((cap,) if method == "cap" else (1,), -1, jnp.int32),
        proxy_camera=jnp.full((cap,) if method == "cap" else (1,), -1, jnp.int32),
        num_clusters=jnp.zeros((), jnp.int32),
        round=jnp.zeros((), jnp.int32),
        ema=ema,
    )
    return model, sharding.replicate(cstate, mesh), tx, lr_fn


# ----------------------------------------------------------------------------- steps
def _apply_update(
    st: state_lib.TrainState,
    tx: optax.GradientTransformation,
    loss: jax.Array,
    grads: Any,
    new_stats: Any,
) -> tuple[state_lib.TrainState, jax.Array]:
    """Optimizer update; a non-finite loss skips it and records the step (as supervised)."""
    updates, new_opt = tx.update(grads, st.opt_state, st.params)
    new_params = optax.apply_updates(st.params, updates)
    ok = jnp.isfinite(loss)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)  # noqa: E731
    new_st = st.replace(
        step=st.step + 1,
        params=keep(new_params, st.params),
        batch_stats=keep(new_stats, st.batch_stats),
        opt_state=keep(new_opt, st.opt_state),
        nonfinite_step=state_lib.first_nonfinite(st.nonfinite_step, st.step, ok),
    )
    return new_st, ok


def apply_train(
    model: nn.Module, params: Any, batch_stats: Any, images: jax.Array, bn_group_size: int = 0
) -> tuple[dict, Any]:
    """Training-mode forward, with BatchNorm statistics per group of ``bn_group_size`` images.

    The references train with ``nn.DataParallel`` on 4 GPUs, so each BatchNorm normalised
    over its replica's quarter of the batch (64 of 256 images in cluster contrast; users
    report 59.1 mAP on 1 GPU vs 82.6 on 4 on Market-1501). Here the global batch
    [N, ...] is reshaped to [G, N / G, ...] (G = N / bn_group_size, consecutive images,
    as DataParallel's scatter splits it) and the forward is ``jax.vmap``-ed over G with
    the parameters shared: every BatchNorm sees only its group. The new running
    statistics are the mean of the G groups' (DataParallel keeps replica 0's).
    ``bn_group_size`` 0 or >= N normalises over the whole batch.

    Returns:
      (outputs with the batch axis restored, new batch_stats).
    """
    variables = {"params": params, "batch_stats": batch_stats}
    n = images.shape[0]
    if not bn_group_size or bn_group_size >= n:
        out, new_vars = model.apply(variables, images, train=True, mutable=["batch_stats"])
        return out, new_vars["batch_stats"]
    groups = n // bn_group_size
    x = images.reshape(groups, bn_group_size, *images.shape[1:])
    out, new_vars = jax.vmap(
        lambda xg: model.apply(variables, xg, train=True, mutable=["batch_stats"])
    )(x)
    out = jax.tree.map(lambda a: a.reshape(n, *a.shape[2:]), out)
    return out, jax.tree.map(lambda a: jnp.mean(a, axis=0), new_vars["batch_stats"])


def check_bn_groups(config: ml_collections.ConfigDict) -> int:
    """The BatchNorm group size, checked against the batch (0 = whole batch)."""
    g = int(config.train.get("bn_group_size", 0) or 0)
    batch = config.data.p * config.data.k
    if g and (batch % g or g < 2):
        raise errors.ReidError(
            f"train.bn_group_size = {g} must be >= 2 and divide the batch P x K = {batch}."
        )
    return g


def make_contrast_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    lr_fn: optax.Schedule,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
) -> Any:
    """Jitted cluster-contrast ``train_step(cstate, batch, rng) -> (cstate, metrics)``."""
    aug_cfg = config.aug.to_dict()
    cc = config.cluster
    update = memory.hard_update if cc.use_hard else memory.momentum_update
    bn_group = check_bn_groups(config)

    def train_step(cs: ClusterState, batch: dict, rng: jax.Array) -> tuple[ClusterState, dict]:
        st = cs.train
        rng = jax.random.fold_in(rng, st.step)
        images = augment.augment_batch(rng, batch["image"], aug_cfg)
        labels = batch["label"]

        def loss_fn(params: dict) -> tuple[jax.Array, tuple[jax.Array, Any]]:
            out, new_stats = apply_train(
                model, params["model"], st.batch_stats, images, bn_group
            )
            f = out["neck_features"]
            loss = contrastive.cluster_nce(f, cs.memory, labels, cs.num_clusters, cc.temperature)
            return loss, (f, new_stats)

        (loss, (f, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(st.params)
        new_st, ok = _apply_update(st, tx, loss, grads, new_stats)
        # The memory moves with the features of this forward pass, after the loss used
        # the old memory (the reference updates it in CM.backward).
        f = distance.l2_normalize(jax.lax.stop_gradient(f))
        new_mem = jnp.where(ok, update(cs.memory, f, labels, cc.momentum), cs.memory)
        logits = contrastive.memory_logits(f, cs.memory, cs.num_clusters, cc.temperature)
        metrics = {
            "loss": loss,
            "train_acc": jnp.mean(jnp.argmax(logits, -1) == labels),
            "lr": lr_fn(st.step),
        }
        return cs.replace(train=new_st, memory=new_mem), metrics

    return sharding.jit_train_step(train_step, mesh)


def make_pplr_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    lr_fn: optax.Schedule,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
) -> Any:
    """Jitted PPLR ``train_step(cstate, batch, rng) -> (cstate, metrics)``."""
    aug_cfg = config.aug.to_dict()
    pc = config.pplr
    bn_group = check_bn_groups(config)

    def train_step(cs: ClusterState, batch: dict, rng: jax.Array) -> tuple[ClusterState, dict]:
        st = cs.train
        rng = jax.random.fold_in(rng, st.step)
        images = augment.augment_batch(rng, batch["image"], aug_cfg)
        labels = batch["label"]
        ca = cs.agreement[batch["index"]]  # [B, P] scores of these images
        n = cs.num_clusters
        use_aals = cs.round >= pc.aals_epoch

        def loss_fn(params: dict) -> tuple[jax.Array, tuple[dict, Any, dict]]:
            out, new_stats = apply_train(
                model, params["model"], st.batch_stats, images, bn_group
            )
            terms = {
                "pglr_loss": cross_agreement.pglr(
                    out["logits"], out["part_logits"], labels, ca, n, pc.beta
                ),
                "triplet_loss": contrastive.soft_triplet(out["neck_features"], labels),
            }
            part_losses = []
            for p in range(out["part_logits"].shape[1]):
                lp = out["part_logits"][:, p]
                part_losses.append(jnp.where(
                    use_aals,
                    cross_agreement.aals(lp, labels, ca[:, p], n),
                    contrastive.masked_cross_entropy(lp, labels, n, PART_LABEL_SMOOTHING),
                ))
            terms["part_loss"] = jnp.mean(jnp.stack(part_losses))
            terms["loss"] = terms["pglr_loss"] + terms["triplet_loss"] + terms["part_loss"]
            return terms["loss"], (terms, new_stats, out)

        (loss, (terms, new_stats, out)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            st.params
        )
        new_st, _ = _apply_update(st, tx, loss, grads, new_stats)
        logits = contrastive.masked_logits(out["logits"], n)
        metrics = dict(terms)
        metrics["train_acc"] = jnp.mean(jnp.argmax(logits, -1) == labels)
        metrics["lr"] = lr_fn(st.step)
        return cs.replace(train=new_st), metrics

    return sharding.jit_train_step(train_step, mesh)


def make_cap_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    lr_fn: optax.Schedule,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
) -> Any:
    """Jitted CAP ``train_step(cstate, batch, rng) -> (cstate, metrics)``; labels are proxies."""
    aug_cfg = config.aug.to_dict()
    cp = config.cap
    bn_group = check_bn_groups(config)

    def train_step(cs: ClusterState, batch: dict, rng: jax.Array) -> tuple[ClusterState, dict]:
        st = cs.train
        rng = jax.random.fold_in(rng, st.step)
        images = augment.augment_batch(rng, batch["image"], aug_cfg)
        proxies = batch["label"]
        cross = cs.round >= cp.crosscam_epoch

        def loss_fn(params: dict) -> tuple[jax.Array, tuple[dict, jax.Array, Any]]:
            out, new_stats = apply_train(model, params["model"], st.batch_stats, images, bn_group)
            f = out["neck_features"]
            intra, inter = camera_proxies.cap_losses(
                f, proxies, cs.memory, cs.proxy_cluster, cs.proxy_camera, cs.num_clusters,
                cp.temperature, cp.hard_negatives,
            )
            loss = intra + jnp.where(cross, cp.inter_weight * inter, 0.0)
            return loss, ({"loss": loss, "intra_loss": intra, "inter_loss": inter}, f, new_stats)

        (loss, (terms, f, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            st.params
        )
        new_st, ok = _apply_update(st, tx, loss, grads, new_stats)
        f = distance.l2_normalize(jax.lax.stop_gradient(f))
        new_mem = jnp.where(
            ok, memory.momentum_update(cs.memory, f, proxies, cp.momentum), cs.memory
        )
        metrics = dict(terms)
        metrics["lr"] = lr_fn(st.step)
        return cs.replace(train=new_st, memory=new_mem), metrics

    return sharding.jit_train_step(train_step, mesh)


def make_mmt_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    lr_fn: optax.Schedule,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
) -> Any:
    """Jitted MMT ``train_step(cstate, batch, rng) -> (cstate, metrics)``."""
    aug_cfg = config.aug.to_dict()
    mc = config.mmt
    bn_group = check_bn_groups(config)
    w_ce, w_tri = mc.soft_ce_weight, mc.soft_tri_weight

    def train_step(cs: ClusterState, batch: dict, rng: jax.Array) -> tuple[ClusterState, dict]:
        st = cs.train
        rng = jax.random.fold_in(rng, st.step)
        r1, r2 = jax.random.split(rng)
        x1 = augment.augment_batch(r1, batch["image"], aug_cfg)  # two views, as MMT
        x2 = augment.augment_batch(r2, batch["image"], aug_cfg)
        y = batch["label"]
        n = cs.num_clusters
        ema = cs.ema
        # Teachers run in training mode too (MMT calls model_ema.train()): batch
        # statistics in the forward, their own running statistics updated.
        t1, t1_stats = apply_train(model, ema["params"]["model"], ema["batch_stats"]["model"], x1, bn_group)
        t2, t2_stats = apply_train(model, ema["params"]["model2"], ema["batch_stats"]["model2"], x2, bn_group)
        t1, t2 = jax.lax.stop_gradient((t1, t2))

        def loss_fn(params: dict) -> tuple[jax.Array, tuple[dict, Any, dict]]:
            s1, bs1 = apply_train(model, params["model"], st.batch_stats["model"], x1, bn_group)
            s2, bs2 = apply_train(model, params["model2"], st.batch_stats["model2"], x2, bn_group)
            lg = lambda o: contrastive.masked_logits(o["logits"], n)  # noqa: E731
            terms = {
                "ce_loss": contrastive.masked_cross_entropy(s1["logits"], y, n, mc.label_smoothing)
                + contrastive.masked_cross_entropy(s2["logits"], y, n, mc.label_smoothing),
                "triplet_loss": contrastive.soft_triplet(s1["features"], y)
                + contrastive.soft_triplet(s2["features"], y),
                "soft_ce_loss": contrastive.soft_entropy(lg(s1), lg(t2))
                + contrastive.soft_entropy(lg(s2), lg(t1)),
                "soft_triplet_loss": contrastive.soft_triplet_distill(s1["features"], t2["features"], y)
                + contrastive.soft_triplet_distill(s2["features"], t1["features"], y),
            }
            terms["loss"] = (
                (1 - w_ce) * terms["ce_loss"] + (1 - w_tri) * terms["triplet_loss"]
                + w_ce * terms["soft_ce_loss"] + w_tri * terms["soft_triplet_loss"]
            )
            return terms["loss"], (terms, {"model": bs1, "model2": bs2}, s1)

        (loss, (terms, new_stats, s1)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            st.params
        )
        new_st, ok = _apply_update(st, tx, loss, grads, new_stats)
        # MMT _update_ema_variables: alpha = min(1 - 1 / (global_step + 1), 0.999), on
        # the parameters only; global_step counts from 0.
        alpha = jnp.minimum(1.0 - 1.0 / (st.step + 1.0), mc.ema_alpha)
        new_ema = {
            "params": jax.tree.map(lambda e, p: alpha * e + (1 - alpha) * p, ema["params"], new_st.params),
            "batch_stats": {"model": t1_stats, "model2": t2_stats},
        }
        new_ema = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new_ema, ema)
        metrics = dict(terms)
        metrics["train_acc"] = jnp.mean(jnp.argmax(contrastive.masked_logits(s1["logits"], n), -1) == y)
        metrics["lr"] = lr_fn(st.step)
        return cs.replace(train=new_st, ema=new_ema), metrics

    return sharding.jit_train_step(train_step, mesh)


# ----------------------------------------------------------------------------- round
def eval_variables(cs: ClusterState, which: str = "model") -> dict:
    """The variables that ``model.apply`` takes; for MMT, mean teacher ``which``."""
    if isinstance(cs.ema, dict):
        return {"params": cs.ema["params"][which], "batch_stats": cs.ema["batch_stats"][which]}
    return supervised.eval_variables(cs.train)


def embed_train(
    model: nn.Module,
    cs: ClusterState,
    data: sources.ReidData,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    feature: str,
    desc: str,
    which: str = "model",
) -> np.ndarray:
    """Eval-mode features of every training image, L2-normalised over the last axis."""
    fn = embed.make_embed_fn(model, mesh, feature, flip=False)
    f = embed.extract_features(
        fn, eval_variables(cs, which), data, mesh, config.eval.batch_size, config.data.height,
        config.data.width, config.data.num_threads, desc=desc, progress=config.train.progress,
    )
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)


def _set_classifier(params: dict, module: str, centroids: np.ndarray, net: str = "model") -> dict:
    """Copies [C, D] centroids into the first C columns of ``params[net][module]``'s classifier."""
    kernel = np.array(params[net][module]["classifier"]["kernel"])  # [D, capacity]
    kernel[:, : centroids.shape[0]] = centroids.T
    new = flax.core.unfreeze(params) if isinstance(params, flax.core.FrozenDict) else dict(params)
    new[net] = dict(new[net])
    new[net][module] = dict(new[net][module])
    new[net][module]["classifier"] = {"kernel": kernel}
    return new


def pseudo_label_round(
    model: nn.Module,
    cs: ClusterState,
    data: sources.ReidData,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    epoch: int,
    true_ids: np.ndarray,
) -> tuple[ClusterState, np.ndarray, dict[str, float]]:
    """Clusters the training set with the current model and prepares the epoch.

    Returns:
      (state with the round's memory / classifiers / agreement / proxies, [N] training
      labels of the epoch (clusters; proxies for CAP) with -1 for outliers, round
      statistics for the log).
    """
    method = _method(config)
    t0 = time.time()
    feature = "all_features" if method == "pplr" else "neck_features"
    feats = embed_train(model, cs, data, config, mesh, feature, f"round {epoch + 1}: embed")
    if method == "mmt":  # the mean of the two teachers' features (MMT: (cf_1 + cf_2) / 2)
        feats = 0.5 * (feats + embed_train(
            model, cs, data, config, mesh, feature, f"round {epoch + 1}: embed 2", "model2"
        ))
    global_feats = feats[:, 0] if method == "pplr" else feats
    embed_s = time.time() - t0
    cluster_feats = global_feats
    if config.cluster.get("camera_standardize", False):
        cluster_feats = pseudo_labels.camera_standardize(global_feats, data.camera_ids)
    clus = pseudo_labels.pseudo_labels(cluster_feats, config.cluster, seed=config.seed + epoch)
    c = clus.num_clusters
    cap = capacity(config, len(data))
    if c > cap:
        raise errors.ReidError(
            f"round {epoch + 1} found {c} clusters, more than cluster.max_clusters = {cap}; "
            "raise --config.cluster.max_clusters."
        )
    epoch_labels, rows = clus.labels, c
    if method == "cap":
        epoch_labels, proxy_cluster, proxy_camera = camera_proxies.build_proxies(
            clus.labels, data.camera_ids
        )
        rows = len(proxy_cluster)
        if rows > cap:
            raise errors.ReidError(
                f"round {epoch + 1} made {rows} camera proxies, more than "
                f"cluster.max_clusters = {cap}; raise --config.cluster.max_clusters."
            )
    if c < config.data.p or rows < config.data.p:
        raise errors.ReidError(
            f"round {epoch + 1} found {c} clusters, fewer than data.p = {config.data.p} "
            "pseudo identities per batch; raise --config.cluster.eps or lower data.p."
        )
    stats = {"num_clusters": c, "num_outliers": clus.num_outliers, "embed_seconds": embed_s}
    stats.update({f"{k}_seconds": v for k, v in clus.seconds.items()})
    stats.update(pseudo_labels.cluster_quality(clus.labels, true_ids, data.camera_ids))
    host = jax.device_get(cs)
    if method == "cluster_contrast":
        cent = pseudo_labels.centroids(global_feats, clus.labels, c)
        host = host.replace(memory=memory.init_memory(cent, cap))
    elif method == "cap":
        stats["num_proxies"] = rows
        cent = pseudo_labels.centroids(global_feats, epoch_labels, rows)
        pad = lambda a: np.concatenate([a, np.full(cap - rows, -1, np.int32)])  # noqa: E731
        host = host.replace(
            memory=memory.init_memory(cent, cap),
            proxy_cluster=pad(proxy_cluster),
            proxy_camera=pad(proxy_camera),
        )
    elif method == "mmt":
        cent = pseudo_labels.centroids(global_feats, clus.labels, c)
        params, ema_params = host.train.params, host.ema["params"]
        for net in ("model", "model2"):
            params = _set_classifier(params, "neck", cent, net)
            ema_params = _set_classifier(ema_params, "neck", cent, net)
        host = host.replace(
            train=host.train.replace(params=params), ema={**host.ema, "params": ema_params}
        )
    else:
        part_feats = feats[:, 1:]
        t1 = time.time()
        score = cross_agreement.cross_agreement(global_feats, part_feats, config.pplr.k)
        stats["agreement_seconds"] = time.time() - t1
        for p in range(score.shape[1]):
            stats[f"agreement_part{p}"] = float(score[:, p].mean())
        params = _set_classifier(
            host.train.params, "neck", pseudo_labels.centroids(global_feats, clus.labels, c)
        )
        part_cent = pseudo_labels.centroids(part_feats, clus.labels, c)  # [C, P, D]
        for p in range(part_feats.shape[1]):
            params = _set_classifier(params, f"part{p}_neck", part_cent[:, p])
        host = host.replace(train=host.train.replace(params=params), agreement=score)
    host = host.replace(
        num_clusters=np.asarray(rows, np.int32), round=np.asarray(epoch, np.int32)
    )
    stats["round_seconds"] = time.time() - t0
    return sharding.replicate(host, mesh), epoch_labels, stats


# ----------------------------------------------------------------------------- main loop
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains with pseudo labels (resuming from ``workdir`` if it holds a checkpoint).

    Returns:
      {'before': metrics of the untrained model or None, 'after': final metrics,
       'paths', 'state', 'train_seconds', 'epochs_done', 'rounds': per-round stats}.
    """
    # --- setup
    method = _method(config)
    os.makedirs(workdir, exist_ok=True)
    mesh = sharding.make_mesh(config.num_devices)
    reporting.write_config(config, workdir)
    writer = reporting.MetricWriter(workdir)

    # --- data: the training labels are hidden; identities are kept for diagnostics only
    train, query, gallery = supervised.open_splits(config)
    true_ids = train.person_ids.copy()
    hidden = np.full(len(train), -1, np.int32)
    unlabeled = dataclasses.replace(train, labels=hidden, person_ids=hidden)
    p, k = config.data.p, config.data.k
    if (p * k) % mesh.size:
        raise errors.ReidError(
            f"batch P x K = {p * k} is not divisible by the {mesh.size} devices."
        )
    steps = config.data.steps_per_epoch or max(1, len(train) // (p * k))

    # --- model and state
    model, cs, tx, lr_fn = create_state(config, len(train), steps, mesh)
    make_step = {"cluster_contrast": make_contrast_step, "pplr": make_pplr_step,
                 "cap": make_cap_step, "mmt": make_mmt_step}[method]
    train_step = make_step(model, tx, lr_fn, config, mesh)

    # --- checkpoint: resume if the workdir holds one
    mngr = checkpoint.manager(workdir)
    start_epoch = 0
    restored = checkpoint.restore_latest(mngr, cs, config)
    if restored is not None:
        cs, meta = restored
        start_epoch = int(meta["epoch"])
        print(f"resumed from {mngr.directory} at epoch {start_epoch} (round {meta['round']})")

    paths = reporting.run_paths(workdir, writer, mngr.directory)
    before = retrieval.evaluate_before_training(
        model, eval_variables(cs), query, gallery, config, mesh, workdir, start_epoch
    )
    if before is not None:
        writer.write(0, before, prefix="eval_before/")

    # --- loop: one pseudo-label round, then one epoch on the clustered images
    rng = jax.random.key(config.seed + 1)
    stop_at = min(config.train.stop_after_epochs or config.train.num_epochs, config.train.num_epochs)
    step = int(jax.device_get(cs.train.step))
    rounds = []
    t0 = time.time()
    for epoch in range(start_epoch, stop_at):
        cs, labels, stats = pseudo_label_round(model, cs, unlabeled, config, mesh, epoch, true_ids)
        rounds.append(stats)
        writer.write(step, stats, prefix="cluster/")
        print(
            f"round {epoch + 1}: {stats['num_clusters']} clusters, {stats['num_outliers']} "
            f"outliers, NMI {stats['nmi']:.3f}, purity {stats['purity']:.3f}, "
            f"camera purity {stats['camera_purity']:.3f}"
            + "".join(f", {k} {v:.3f}" for k, v in stats.items() if k.startswith("agreement_p"))
        )
        epoch_data = dataclasses.replace(unlabeled, labels=labels)
        batches = samplers.pk_batches(labels, train.camera_ids, p, k, config.seed, epoch, steps)
        loader = pipeline.train_loader(
            epoch_data, batches, config.data.height, config.data.width, config.data.num_threads
        )
        for batch in reporting.progress(loader, len(batches), f"epoch {epoch + 1}", config.train.progress):
            cs, metrics = train_step(cs, sharding.to_global(batch, mesh), rng)
            step += 1  # a host counter: reading the state would sync with the device
            if step % config.train.log_every_steps == 0:
                supervised.check_finite(cs.train)
                writer.write(step, jax.device_get(metrics), prefix="train/")
        supervised.check_finite(cs.train)
        done = epoch + 1
        if done % config.train.checkpoint_every_epochs == 0 or done == stop_at:
            checkpoint.save(mngr, done, cs, {
                "epoch": done,
                "round": epoch,
                "num_clusters": int(stats["num_clusters"]),
                "config_fingerprint": checkpoint.fingerprint(config),
            })
        if config.eval.every_epochs and done % config.eval.every_epochs == 0 and done < config.train.num_epochs:
            res = retrieval.evaluate(model, eval_variables(cs), query, gallery, config, mesh)
            writer.write(step, res, prefix="eval/")
            print(f"epoch {done}: rank-1 {res['rank1']:.4f} mAP {res['mAP']:.4f}")
    train_seconds = time.time() - t0

    # --- evaluation
    picture = os.path.join(workdir, "ranked_list.png")
    after = retrieval.evaluate(model, eval_variables(cs), query, gallery, config, mesh, picture)
    writer.write(step, after, prefix="eval/")
    writer.close()
    paths["ranked_list"] = picture
    return {
        "before": before,
        "after": after,
        "paths": paths,
        "state": cs,
        "train_seconds": train_seconds,
        "epochs_done": stop_at,
        "rounds": rounds,
    }


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """``--mode=eval``: restores the newest checkpoint in ``workdir`` and evaluates it."""
    mesh = sharding.make_mesh(config.num_devices)
    train, query, gallery = supervised.open_splits(config)
    p, k = config.data.p, config.data.k
    steps = config.data.steps_per_epoch or max(1, len(train) // (p * k))
    model, cs, _, _ = create_state(config, len(train), steps, mesh)
    cs = checkpoint.restore_for_eval(workdir, cs, config)
    picture = os.path.join(workdir, "ranked_list.png")
    after = retrieval.evaluate(model, eval_variables(cs), query, gallery, config, mesh, picture)
    return {"before": None, "after": after, "paths": {"workdir": workdir, "ranked_list": picture}}
