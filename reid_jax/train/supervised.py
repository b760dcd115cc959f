"""Supervised re-ID: the configured objective (``config.loss``) on P x K batches.

This is the BoT strong baseline (Luo et al., "Bag of Tricks and a Strong Baseline for
Deep Person Re-identification", CVPRW 2019) when run with experiments/bot.py: warmup,
random erasing, label smoothing, last stride 1, BNNeck, center loss; the zoo's other
supervised methods (AGW, PCB / RPP, IANet, margin softmaxes, identification +
verification with LSRO, APR) are the same trainer with other model and loss keys.

What is particular to it: the optional center-loss centres in the parameters, LSRO's
unlabeled pictures appended to every batch (``data.unlabeled``), the target-domain
pictures forwarded only to adapt BatchNorm (``data.bn_target``: MMT's source
pre-training), and the P x K identity sampler. The loop, initialisation and evaluation are shared (``loop.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from reid_jax import errors, sharding
from reid_jax.config_schema import Key
from reid_jax.data import samplers, sources
from reid_jax.losses import objective
from reid_jax.models import zoo
from reid_jax.train import forward, init, loop, optim, step
from reid_jax.train import state as state_lib

CONFIG = {
    "loss": objective.CONFIG,
    "data": {
        # LSRO (Zheng et al. 2017): extra 'dataset:split' pictures that enter training
        # unlabeled (label -1, uniform identity target; needs loss.lsro).
        "unlabeled": Key("", "Extra unlabeled 'dataset:split' pictures (LSRO), comma-separated."),
        "unlabeled_per_batch": Key(0, "Unlabeled pictures appended to every P x K batch.",
                                   low=0),
        # MMT's source pre-training (yxgeee/MMT mmt/trainers.py:37-40, PreTrainer): every
        # iteration also forwards a random target batch in training mode, no loss, so
        # that BatchNorm's running statistics follow the target domain as well.
        "bn_target": Key("", "Target-domain 'dataset:split' pictures (labels unused) forwarded "
                         "after every batch only to update BatchNorm's running statistics."),
        "bn_target_per_batch": Key(0, "Target pictures forwarded per step (MMT: 64, the "
                                   "source batch).", low=0),
    },
}


def validate(config: ml_collections.ConfigDict) -> None:
    """Cross-key rules: LSRO's unlabeled pictures, RPP's start, the BatchNorm groups."""
    d, loss = config.data, config.loss
    if bool(d.bn_target) != (d.bn_target_per_batch > 0):
        raise errors.ReidError(
            "config.data.bn_target and data.bn_target_per_batch go together: name the target "
            "pictures ('dataset:split') and how many are forwarded per step, or neither."
        )
    if d.bn_target and d.unlabeled:
        raise errors.ReidError(
            "config.data.bn_target and data.unlabeled (LSRO) cannot be combined; keep one."
        )
    if bool(d.unlabeled) != (d.unlabeled_per_batch > 0):
        raise errors.ReidError(
            "config.data.unlabeled and data.unlabeled_per_batch go together: name the extra "
            "pictures ('dataset:split') and how many join each batch, or neither."
        )
    if d.unlabeled and not loss.lsro:
        raise errors.ReidError(
            "config.data.unlabeled pictures have no identity; train them with "
            "--config.loss.lsro=True."
        )
    if d.unlabeled and (loss.triplet_weight > 0 or loss.center_weight > 0 or loss.circle_weight > 0):
        raise errors.ReidError(
            "the triplet, circle and center losses would treat config.data.unlabeled's "
            "pictures as one identity; set their weights to 0."
        )
    if config.model.rpp and not config.model.init_from_run:
        raise errors.ReidError(
            "config.model.rpp = True refines the parts of a trained PCB (Sun et al., Sec. "
            "3.3): pass --config.model.init_from_run=<the PCB run's workdir>."
        )
    if len(init.init_runs(config)) > 1:
        raise errors.ReidError("config.model.init_from_run names one earlier run here.")
    if d.sampler == "random" and (loss.triplet_weight > 0 or loss.circle_weight > 0
                                  or loss.verification_weight > 0):
        raise errors.ReidError(
            "config.data.sampler = 'random' draws no identity pairs for the triplet, circle or "
            "verification losses; use data.sampler='pk' or set their weights to 0."
        )
    forward.check_bn_groups(config, d.p * d.k + d.unlabeled_per_batch)
    if d.bn_target_per_batch:
        forward.check_bn_groups(config, d.bn_target_per_batch)


def _check_data(train: sources.ReidData, config: ml_collections.ConfigDict, devices: int) -> None:
    if train.num_classes == 0:
        raise errors.ReidError(f"{train.name} has no identity labels; is it a training split?")
    if config.loss.attribute_weight > 0 and (
        train.attributes is None or not (train.attributes >= 0).any()
    ):
        raise errors.ReidError(
            f"config.loss.attribute_weight > 0 but {train.name} has no known attribute labels; "
            "build it with the attribute annotations (data_builders/README.md) or set "
            "loss.attribute_weight=0."
        )
    d = config.data
    samplers.check_pk(train.labels, d.p, d.k, devices,
                      d.unlabeled_per_batch + d.bn_target_per_batch)


def loss_fn(fwd: forward.Forward, config: ml_collections.ConfigDict) -> step.LossFn:
    """The configured objective (``config.loss``) of one augmented batch."""

    n_target = config.data.bn_target_per_batch

    def loss(state: state_lib.State, params: dict, images: jax.Array, batch: dict,
             key: jax.Array) -> tuple:
        if n_target:  # the last n_target pictures are target pictures: BatchNorm only
            target, images = images[-n_target:], images[:-n_target]
            batch = {k: v[:-n_target] for k, v in batch.items()}
        out, stats = fwd(params["model"], state.train.batch_stats, images, key)
        if n_target:  # after the source forward, as MMT's PreTrainer
            _, stats = fwd(jax.lax.stop_gradient(params["model"]), stats, target,
                           jax.random.fold_in(key, 1))
        centers = params["center_loss"]["centers"] if "center_loss" in params else None
        terms = objective.loss_terms(out, batch["label"], centers, config.loss,
                                     batch.get("attributes"))
        metrics = {k: v for k, v in terms.items() if k != "loss"}
        if out.get("logits") is not None:
            metrics["train_acc"] = jnp.mean(jnp.argmax(out["logits"], -1) == batch["label"])
        return terms["loss"], {"batch_stats": stats, "metrics": metrics}

    return loss


def build(ctx: loop.Context) -> loop.Trainer:
    """The supervised trainer for ``ctx.config``."""
    config, mesh = ctx.config, ctx.mesh
    d = config.data
    train = sources.open_train(d, "" if ctx.for_eval else (d.unlabeled or d.bn_target))
    _check_data(train, config, mesh.size)
    steps = d.steps_per_epoch or samplers.steps_per_epoch(train.labels, d.p, d.k)
    model = zoo.build_model(config.model, train.num_classes)
    k_model, k_centers = jax.random.split(jax.random.key(config.seed))
    net, stats = init.model_variables(model, config, k_model, load=not ctx.for_eval)
    params = {"model": net}
    if config.loss.center_weight > 0:
        x = jax.ShapeDtypeStruct((1, d.height, d.width, 3), jnp.float32)
        dim = jax.eval_shape(
            lambda v, x: model.apply(v, x, train=False), {"params": net, "batch_stats": stats}, x
        )["features"].shape[-1]
        # BoT's CenterLoss draws its centres from a standard normal.
        params["center_loss"] = {"centers": jax.random.normal(k_centers, (train.num_classes, dim))}
    tx, lr_fn = optim.make_optimizer(
        config.optim, params, steps, config.train.num_epochs,
        center_weight=config.loss.center_weight, center_lr=config.loss.center_lr,
    )
    state = state_lib.State(state_lib.TrainState.create(params, stats, tx.init(params)))
    fwd = forward.Forward.from_config(model, config)
    unlabeled_pool = np.flatnonzero(train.labels < 0)

    def prepare_epoch(st: state_lib.State, epoch: int) -> loop.Epoch:
        batches = samplers.epoch_batches(
            d.sampler, train.labels, train.camera_ids, d.p, d.k, config.seed, epoch, steps
        )
        extra = d.unlabeled_per_batch + d.bn_target_per_batch
        if extra:  # LSRO's or the target's pictures after the P x K identities
            batches = np.concatenate([batches, samplers.unlabeled_batches(
                unlabeled_pool, len(batches), extra, config.seed, epoch)], axis=1)
        return loop.Epoch(st, train, batches)

    return loop.Trainer(
        model=model,
        state=sharding.replicate(state, mesh),
        train_step=sharding.jit_train_step(step.gradient_step(
            fwd, tx, lr_fn, loss_fn(fwd, config)), mesh),
        prepare_epoch=prepare_epoch,
        eval_variables=state_lib.eval_variables,
    )
