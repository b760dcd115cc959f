"""MMT: mutual mean-teaching, a pseudo-label refinery for domain adaptation.

Ge, Chen and Li, "Mutual Mean-Teaching: Pseudo Label Refinery for Unsupervised Domain
Adaptation on Person Re-identification", ICLR 2020 (official code: yxgeee/MMT). Two
students (``params['model']``, ``params['model2']``) and their EMA mean teachers
(alpha 0.999). Every round: k-means pseudo labels on the mean of the two teachers'
features, all four classifiers set to the normalised centroids. Every step, on two
augmented views: each student learns from the pseudo labels (label-smoothed CE,
soft-margin triplet) and from the *other* student's teacher (soft CE weight 0.5, soft
triplet weight 0.8). The students start from two source-domain runs
(``model.init_from_run='runA,runB'``), or from ImageNet weights (both alike), or from
two random initialisations.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from reid_jax import errors
from reid_jax.clustering import pseudo_labels
from reid_jax.config_schema import Key
from reid_jax.losses import contrastive
from reid_jax.train import init, loop, rounds, step
from reid_jax.train import state as state_lib

NETS = ("model", "model2")

CONFIG = {
    "cluster": rounds.CONFIG,
    "mmt": {
        "soft_ce_weight": Key(0.5, "Weight of the soft CE from the other teacher.", low=0.0,
                              high=1.0),
        "soft_tri_weight": Key(0.8, "Weight of the soft triplet from the other teacher.",
                               low=0.0, high=1.0),
        "ema_alpha": Key(0.999, "EMA momentum of the mean teachers.", low=0.0, high=1.0),
        "label_smoothing": Key(0.1, "Label smoothing of the pseudo-label CE.", low=0.0,
                               high=1.0),
        "reset_optimizer": Key(True, "A fresh Adam every round (the official script builds its "
                               "optimizer inside the epoch loop)."),
    },
}


@flax.struct.dataclass
class MMTState:
    """The two students (in ``train``) and their mean teachers.

    Attributes:
      train: TrainState over ``params = {'model', 'model2'}`` and
        ``batch_stats = {'model', 'model2'}``.
      teachers: {'params': {'model', 'model2'}, 'batch_stats': {'model', 'model2'}}.
      num_clusters: int32, classifier columns in use this round.
    """

    train: state_lib.TrainState
    teachers: Any
    num_clusters: jax.Array


def validate(config: ml_collections.ConfigDict) -> None:
    """MMT names two source runs, or none."""
    rounds.validate(config)
    runs = init.init_runs(config)
    if runs and len(runs) != 2:
        raise errors.ReidError(
            f"config.model.init_from_run = {config.model.init_from_run!r} names {len(runs)} "
            "run(s): MMT starts its two students from two source runs trained with different "
            "seeds, 'runA,runB'."
        )


def teacher_variables(state: MMTState, net: str = "model") -> dict:
    """The variables of mean teacher ``net`` (what MMT evaluates)."""
    t = state.teachers
    return {"params": t["params"][net], "batch_stats": t["batch_stats"][net]}


def make_train_step(s: rounds.Setup, config: ml_collections.ConfigDict) -> Any:
    """``train_step(state, batch, rng) -> (state, metrics)`` (unjitted), on two views."""
    mc = config.mmt
    w_ce, w_tri = mc.soft_ce_weight, mc.soft_tri_weight

    def loss(ms: MMTState, params: dict, views: tuple, batch: dict, key: jax.Array) -> tuple:
        y, n = batch["label"], ms.num_clusters
        tp, ts = ms.teachers["params"], ms.teachers["batch_stats"]
        # Teachers run in training mode too (MMT calls model_ema.train()): batch
        # statistics in the forward, their own running statistics updated.
        t_out = [s.fwd(tp[k], ts[k], x) for k, x in zip(NETS, views)]
        t1, t2 = jax.lax.stop_gradient((t_out[0][0], t_out[1][0]))
        (s1, bs1), (s2, bs2) = (s.fwd(params[k], ms.train.batch_stats[k], x)
                                for k, x in zip(NETS, views))
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
        total = ((1 - w_ce) * terms["ce_loss"] + (1 - w_tri) * terms["triplet_loss"]
                 + w_ce * terms["soft_ce_loss"] + w_tri * terms["soft_triplet_loss"])
        terms["train_acc"] = jnp.mean(jnp.argmax(lg(s1), -1) == y)
        teacher_stats = {k: t_out[i][1] for i, k in enumerate(NETS)}
        return total, {"batch_stats": {"model": bs1, "model2": bs2}, "metrics": terms,
                       "teacher_stats": teacher_stats}

    def after(ms: MMTState, ok: jax.Array, aux: dict, batch: dict) -> tuple:
        # MMT _update_ema_variables: alpha = min(1 - 1 / (global_step + 1), 0.999), on
        # the parameters only; global_step counts from 0 (the step just taken).
        alpha = jnp.minimum(1.0 - 1.0 / ms.train.step, mc.ema_alpha)
        new_teachers = {
            "params": jax.tree.map(lambda e, p: alpha * e + (1 - alpha) * p,
                                   ms.teachers["params"], ms.train.params),
            "batch_stats": aux["teacher_stats"],
        }
        return ms.replace(teachers=state_lib.keep_if(ok, new_teachers, ms.teachers)), {}

    return step.gradient_step(s.fwd, s.tx, s.lr_fn, loss, after, views=2)


def build(ctx: loop.Context) -> loop.Trainer:
    """The MMT trainer for ``ctx.config``."""
    config = ctx.config

    def students(model: Any, rng: jax.Array) -> tuple[dict, dict]:
        # Two initialisations: source run i for student i, or two random seeds (with
        # ImageNet weights, both backbones are the same file).
        keys = (rng, jax.random.fold_in(rng, 10_000))
        nets = [init.model_variables(model, config, k, load=not ctx.for_eval, run_index=i)
                for i, k in enumerate(keys)]
        return {k: v[0] for k, v in zip(NETS, nets)}, {k: v[1] for k, v in zip(NETS, nets)}

    s = rounds.setup(ctx, with_classifier=True, variables=students)
    state = MMTState(
        train=rounds.create_train_state(s),
        teachers={"params": s.params, "batch_stats": s.batch_stats},
        num_clusters=jnp.zeros((), jnp.int32),
    )

    def round_fn(host: MMTState, epoch: int) -> tuple[MMTState, np.ndarray, dict]:
        # The mean of the two teachers' features (MMT: (cf_1 + cf_2) / 2).
        feats = 0.5 * sum(
            rounds.embed(s, ctx, teacher_variables(host, k), "neck_features",
                         f"round {epoch + 1}: embed {k}") for k in NETS
        )
        clus, stats = rounds.cluster(s, config, feats, epoch)
        cent = pseudo_labels.centroids(feats, clus.labels, clus.num_clusters)
        params, t_params = host.train.params, host.teachers["params"]
        for net in NETS:
            params = rounds.set_classifier(params, net, "neck", cent)
            t_params = rounds.set_classifier(t_params, net, "neck", cent)
        train = host.train.replace(params=params)
        if config.mmt.reset_optimizer:
            train = train.replace(opt_state=jax.device_get(s.tx.init(params)))
        host = host.replace(
            train=train,
            teachers={**host.teachers, "params": t_params},
            num_clusters=np.asarray(clus.num_clusters, np.int32),
        )
        return host, clus.labels, stats

    train_step = make_train_step(s, config)
    return rounds.trainer(s, ctx, state, train_step, round_fn, teacher_variables)
