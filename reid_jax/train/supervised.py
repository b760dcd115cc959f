"""Supervised re-ID training: identity + triplet (+ center) losses on P x K batches.

This is the BoT strong baseline (Luo et al., "Bag of Tricks and a Strong Baseline for
Deep Person Re-identification", CVPRW 2019) when run with experiments/bot.py: warmup,
random erasing, label smoothing, last stride 1, BNNeck, center loss.

Read top to bottom: setup, data, model and state, step, checkpoint, loop, evaluation.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from reid_jax import checkpoint, errors, reporting, sharding
from reid_jax.data import augment, pipeline, samplers, sources
from reid_jax.evaluation import retrieval
from reid_jax.losses import attribute, lsro, margin, metric, verification
from reid_jax.models import zoo
from reid_jax.train import optim, warm_start
from reid_jax.train import state as state_lib

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


# ----------------------------------------------------------------------------- data
def open_splits(
    config: ml_collections.ConfigDict, with_unlabeled: bool = True
) -> tuple[sources.ReidData, sources.ReidData, sources.ReidData]:
    """(train, query, gallery) ReidData as named by config.data.

    ``with_unlabeled``: also open ``data.unlabeled`` (label -1, after the labelled parts,
    so the number of classes is the same either way); evaluation leaves it out.
    """
    d = config.data
    def spec(s: str) -> list[tuple[str, str]]:
        return sources.parse_specs(s, d.dataset)
    labeled = spec(d.train)
    extra = spec(d.get("unlabeled", "")) if with_unlabeled else []
    train = sources.open_data(labeled + extra, d.data_dir)
    if extra:
        train = sources.hide_labels(train, first_domain=len(labeled))
    query = sources.open_data(spec(d.query), d.data_dir, relabel=False)
    gallery = sources.open_data(spec(d.gallery), d.data_dir, relabel=False)
    return train, query, gallery


def check_unlabeled(config: ml_collections.ConfigDict) -> None:
    """Raises ReidError when ``data.unlabeled`` (LSRO's extra images) cannot be used.

    (Whether the devices divide the batch is `samplers.check_pk`'s to say.)
    """
    d, loss = config.data, config.loss
    per_batch = d.get("unlabeled_per_batch", 0)
    if not d.get("unlabeled", ""):
        if per_batch:
            raise errors.ReidError(
                "data.unlabeled_per_batch > 0 but data.unlabeled is empty; name the extra "
                "pictures ('dataset:split') or set data.unlabeled_per_batch=0."
            )
        return
    if per_batch <= 0:
        raise errors.ReidError("data.unlabeled is set: give data.unlabeled_per_batch > 0.")
    if not loss.get("lsro", False):
        raise errors.ReidError(
            "data.unlabeled pictures have no identity; train them with --config.loss.lsro=True."
        )
    if loss.triplet_weight > 0 or loss.center_weight > 0 or loss.get("circle_weight", 0.0) > 0:
        raise errors.ReidError(
            "the triplet, circle and center losses would treat the unlabeled pictures as one "
            "identity; set their weights to 0 when data.unlabeled is set."
        )


# ----------------------------------------------------------------------------- model
def build_model(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    """The configured network with a classifier over ``num_classes`` identities."""
    m = config.model.to_dict()
    if m.get("dtype") not in DTYPES:
        raise errors.ReidError(
            f"unknown model.dtype {m.get('dtype')!r}; choose one of {', '.join(DTYPES)}."
        )
    m["dtype"] = DTYPES[m["dtype"]]
    m["num_classes"] = num_classes
    return zoo.build_model(ml_collections.ConfigDict(m))


def init_variables(
    model: nn.Module, config: ml_collections.ConfigDict, num_classes: int, rng: jax.Array
) -> tuple[dict, Any]:
    """Initial (params, batch_stats); params = {'model': ..., 'center_loss': ...}."""
    k_model, k_centers = jax.random.split(rng)
    x = jnp.zeros((1, config.data.height, config.data.width, 3), jnp.float32)
    variables = jax.jit(functools.partial(model.init, train=False))(k_model, x)
    params = {"model": variables["params"]}
    if config.loss.center_weight > 0:
        dim = model.apply(variables, x, train=False)["features"].shape[-1]
        # BoT's CenterLoss draws its centres from a standard normal.
        params["center_loss"] = {"centers": jax.random.normal(k_centers, (num_classes, dim))}
    return params, variables.get("batch_stats", {})


# ----------------------------------------------------------------------------- step
def _identity_loss(out: dict, labels: jax.Array, cfg: ml_collections.ConfigDict) -> jax.Array:
    """Identity cross-entropy on 'logits', or summed over the PCB stripes' 'part_logits'.

    PCB (Sun et al., ECCV 2018, Sec. 3.1): every stripe has its own classifier and the
    loss is the sum of the P cross-entropies (`part_reduction='mean'` divides by P).
    Margin softmaxes (`margin_softmax` 'cosface' / 'arcface', for `classifier='cosine'`)
    turn the cosines into logits first; `lsro` gives samples labeled -1 a uniform target.
    """
    smoothing = cfg.label_smoothing
    use_lsro = cfg.get("lsro", False)
    if out.get("part_logits") is not None:
        per_part = jax.vmap(
            lambda lg: lsro.identity_cross_entropy(lg, labels, smoothing, use_lsro),
            in_axes=1,
        )(out["part_logits"])
        reduction = cfg.get("part_reduction", "sum")
        if reduction not in ("sum", "mean"):
            raise errors.ReidError(f"loss.part_reduction must be 'sum' or 'mean', got {reduction!r}")
        return jnp.sum(per_part) if reduction == "sum" else jnp.mean(per_part)
    if out.get("logits") is None:
        raise errors.ReidError("loss.id_weight > 0 but the model has no classifier (num_classes 0).")
    logits = out["logits"]
    kind = cfg.get("margin_softmax", "none")
    if kind == "cosface":
        logits = margin.cosface_logits(
            logits, labels, cfg.get("margin_scale", margin.COSFACE_SCALE),
            cfg.get("margin_m", margin.COSFACE_MARGIN),
        )
    elif kind == "arcface":
        logits = margin.arcface_logits(
            logits, labels, cfg.get("margin_scale", margin.ARCFACE_SCALE),
            cfg.get("margin_m", margin.ARCFACE_MARGIN),
        )
    elif kind != "none":
        raise errors.ReidError(
            f"unknown loss.margin_softmax {kind!r}; choose none, cosface or arcface."
        )
    return lsro.identity_cross_entropy(logits, labels, smoothing, use_lsro)


def loss_terms(
    out: dict,
    labels: jax.Array,
    centers: jax.Array | None,
    cfg: ml_collections.ConfigDict,
    attributes: jax.Array | None = None,
) -> dict[str, jax.Array]:
    """The loss terms from model outputs; 'loss' is their weighted sum.

    BoT by default (identity CE + batch-hard triplet + center loss). Optional keys of
    ``cfg`` (read with defaults, so configs without them keep the BoT behaviour):
    ``triplet`` ('hard' batch-hard, or 'wrt' AGW weighted regularization triplet),
    ``part_reduction`` (PCB: 'sum' or 'mean' over stripes), ``margin_softmax``
    ('none', 'cosface', 'arcface') with ``margin_scale`` / ``margin_m``,
    ``circle_weight`` with ``circle_margin`` / ``circle_gamma`` (pairwise circle loss),
    ``lsro`` (uniform targets for label -1), ``verification_weight`` (Zheng et al.
    2016, needs model.verification) and ``attribute_weight`` (APR, needs
    model.num_attributes and ``attributes``). Samples labeled -1 (LSRO) are only
    understood by the identity and verification losses: keep the triplet, circle and
    center losses off when the data holds them.

    Args:
        out: model outputs (see `zoo.ReIDNet`).
        labels: [N] identities.
        centers: center-loss centres, or None when the center loss is off.
        cfg: config.loss.
        attributes: [N, M] binary attribute targets (negative: unknown), or None.

    Returns:
        Dict of scalar terms and their weighted sum 'loss'.
    """
    terms = {}
    total = 0.0
    if cfg.id_weight > 0:
        terms["id_loss"] = _identity_loss(out, labels, cfg)
        total += cfg.id_weight * terms["id_loss"]
    if cfg.triplet_weight > 0:
        kind = cfg.get("triplet", "hard")
        if kind == "hard":
            terms["triplet_loss"] = metric.batch_hard_triplet(
                out["features"], labels, margin=cfg.triplet_margin, soft_margin=cfg.soft_margin
            )
        elif kind == "wrt":
            terms["triplet_loss"] = metric.weighted_regularized_triplet(out["features"], labels)
        else:
            raise errors.ReidError(f"unknown loss.triplet {kind!r}; choose hard or wrt.")
        total += cfg.triplet_weight * terms["triplet_loss"]
    if cfg.get("circle_weight", 0.0) > 0:
        terms["circle_loss"] = metric.pairwise_circle_loss(
            out["features"], labels,
            margin=cfg.get("circle_margin", metric.CIRCLE_MARGIN),
            gamma=cfg.get("circle_gamma", metric.CIRCLE_GAMMA),
        )
        total += cfg.circle_weight * terms["circle_loss"]
    if centers is not None:
        terms["center_loss"] = metric.center_loss(out["features"], labels, centers)
        total += cfg.center_weight * terms["center_loss"]
    if cfg.get("verification_weight", 0.0) > 0:
        if out.get("verification_logits") is None:
            raise errors.ReidError("loss.verification_weight > 0 needs model.verification=True.")
        terms["verification_loss"] = verification.verification_loss(
            out["verification_logits"], labels
        )
        terms["verification_acc"] = verification.verification_accuracy(
            out["verification_logits"], labels
        )
        total += cfg.verification_weight * terms["verification_loss"]
    if cfg.get("attribute_weight", 0.0) > 0:
        if attributes is None:
            raise errors.ReidError(
                "loss.attribute_weight > 0 but the batches carry no 'attributes'; the training "
                "data has no attribute annotations (see data_builders/README.md): set "
                "loss.attribute_weight=0."
            )
        if out.get("attribute_logits") is None:
            raise errors.ReidError("loss.attribute_weight > 0 needs model.num_attributes > 0.")
        terms["attribute_loss"] = attribute.attribute_bce(out["attribute_logits"], attributes)
        terms["attribute_acc"] = attribute.attribute_accuracy(out["attribute_logits"], attributes)
        total += cfg.attribute_weight * terms["attribute_loss"]
    terms["loss"] = total
    return terms


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    lr_fn: optax.Schedule,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
) -> Any:
    """The jitted ``train_step(state, batch, rng) -> (state, metrics)`` over ``mesh``."""
    aug_cfg = config.aug.to_dict()

    def train_step(
        state: state_lib.TrainState, batch: dict, rng: jax.Array
    ) -> tuple[state_lib.TrainState, dict]:
        rng = jax.random.fold_in(rng, state.step)
        images = augment.augment_batch(rng, batch["image"], aug_cfg)
        labels = batch["label"]

        def loss_fn(params: dict) -> tuple[jax.Array, tuple[dict, Any, dict]]:
            out, new_vars = model.apply(
                {"params": params["model"], "batch_stats": state.batch_stats},
                images, train=True, mutable=["batch_stats"],
            )
            centers = params.get("center_loss", {}).get("centers")
            terms = loss_terms(out, labels, centers, config.loss, batch.get("attributes"))
            return terms["loss"], (terms, new_vars["batch_stats"], out)

        (loss, (terms, new_stats, out)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        updates, new_opt = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        # A non-finite loss skips the update (nothing is lost) and records the step.
        ok = jnp.isfinite(loss)
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)  # noqa: E731
        new_state = state.replace(
            step=state.step + 1,
            params=keep(new_params, state.params),
            batch_stats=keep(new_stats, state.batch_stats),
            opt_state=keep(new_opt, state.opt_state),
            nonfinite_step=state_lib.first_nonfinite(state.nonfinite_step, state.step, ok),
        )
        metrics = dict(terms)
        if out.get("logits") is not None:
            metrics["train_acc"] = jnp.mean(jnp.argmax(out["logits"], -1) == labels)
        metrics["lr"] = lr_fn(state.step)
        return new_state, metrics

    return sharding.jit_train_step(train_step, mesh)


def check_finite(state: state_lib.TrainState) -> None:
    """Raises ReidError naming the step if a loss became NaN or inf."""
    bad = int(jax.device_get(state.nonfinite_step))
    if bad >= 0:
        raise errors.ReidError(
            f"loss became NaN or inf at step {bad}; that update was skipped and the last "
            "checkpoint is intact. Lower --config.optim.lr or set optim.grad_clip."
        )


# ----------------------------------------------------------------------------- state
def create_state(
    config: ml_collections.ConfigDict, num_classes: int, steps_per_epoch: int, mesh: jax.sharding.Mesh
) -> tuple[nn.Module, state_lib.TrainState, optax.GradientTransformation, optax.Schedule]:
    """Model, replicated initial state, optax transform and schedule."""
    model = build_model(config, num_classes)
    params, batch_stats = init_variables(model, config, num_classes, jax.random.key(config.seed))
    if config.model.get("init_from"):
        from reid_jax.models import load_torch  # optional: only when importing weights

        params["model"], batch_stats = load_torch.load_into(
            config.model.init_from, params["model"], batch_stats
        )
    if config.optim.get("rpp_classifier_only_epochs", 0) > 0 and not config.model.get("init_from_run"):
        raise errors.ReidError(
            "optim.rpp_classifier_only_epochs > 0 holds every layer but the RPP part classifier, "
            "which needs a trained PCB: pass --config.model.init_from_run=<the PCB run's "
            "workdir>, or set optim.rpp_classifier_only_epochs=0."
        )
    if config.model.get("init_from_run"):
        # An earlier run's weights (RPP from its PCB run); new layers keep their init.
        params["model"], batch_stats, counts = warm_start.load_run(
            config.model.init_from_run, params["model"], batch_stats
        )
        print(f"init_from_run: {counts['copied']} arrays from step {counts['step']} of "
              f"{config.model.init_from_run}, {counts['kept']} new ones as initialised")
    tx, lr_fn = optim.make_optimizer(
        config.optim, params, steps_per_epoch, config.train.num_epochs,
        center_weight=config.loss.center_weight, center_lr=config.loss.center_lr,
    )
    state = state_lib.TrainState.create(params, batch_stats, tx.init(params))
    return model, sharding.replicate(state, mesh), tx, lr_fn


def eval_variables(state: state_lib.TrainState) -> dict:
    """The variables that ``model.apply`` takes, from a train state."""
    return {"params": state.params["model"], "batch_stats": state.batch_stats}


# ----------------------------------------------------------------------------- main loop
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains (resuming from ``workdir`` if it holds a checkpoint), then evaluates.

    Returns:
      {'before': metrics of the untrained model or None, 'after': final metrics, 'paths': ...}.
    """
    # --- setup
    os.makedirs(workdir, exist_ok=True)
    mesh = sharding.make_mesh(config.num_devices)
    reporting.write_config(config, workdir)
    writer = reporting.MetricWriter(workdir)

    # --- data
    check_unlabeled(config)  # before any data is read
    train, query, gallery = open_splits(config)
    if train.num_classes == 0:
        raise errors.ReidError(f"{train.name} has no identity labels; is it a training split?")
    if config.loss.get("attribute_weight", 0.0) > 0 and (
        train.attributes is None or not (train.attributes >= 0).any()
    ):
        raise errors.ReidError(
            f"loss.attribute_weight > 0 but {train.name} has no known attribute labels; build "
            "it with the attribute annotations (data_builders/README.md) or set "
            "loss.attribute_weight=0."
        )
    per_batch = config.data.get("unlabeled_per_batch", 0)
    samplers.check_pk(train.labels, config.data.p, config.data.k, mesh.size, per_batch)
    unlabeled_pool = np.flatnonzero(train.labels < 0)
    steps = config.data.steps_per_epoch or samplers.steps_per_epoch(
        train.labels, config.data.p, config.data.k
    )

    # --- model and state
    model, state, tx, lr_fn = create_state(config, train.num_classes, steps, mesh)
    train_step = make_train_step(model, tx, lr_fn, config, mesh)

    # --- checkpoint: resume if the workdir holds one
    mngr = checkpoint.manager(workdir)
    start_epoch = 0
    restored = checkpoint.restore_latest(mngr, state, config)
    if restored is not None:
        state, meta = restored
        start_epoch = int(meta["epoch"])
        print(f"resumed from {mngr.directory} at epoch {start_epoch} (step {int(state.step)})")

    paths = reporting.run_paths(workdir, writer, mngr.directory)
    before = retrieval.evaluate_before_training(
        model, eval_variables(state), query, gallery, config, mesh, workdir, start_epoch
    )
    if before is not None:
        writer.write(0, before, prefix="eval_before/")

    # --- loop
    rng = jax.random.key(config.seed + 1)
    stop_at = config.train.stop_after_epochs or config.train.num_epochs
    step = int(jax.device_get(state.step))
    t0 = time.time()
    for epoch in range(start_epoch, min(stop_at, config.train.num_epochs)):
        batches = samplers.pk_batches(
            train.labels, train.camera_ids, config.data.p, config.data.k, config.seed, epoch, steps
        )
        if per_batch:  # LSRO: unlabeled pictures after the P x K identities
            batches = np.concatenate([batches, samplers.unlabeled_batches(
                unlabeled_pool, len(batches), per_batch, config.seed, epoch)], axis=1)
        loader = pipeline.train_loader(
            train, batches, config.data.height, config.data.width, config.data.num_threads
        )
        for batch in reporting.progress(loader, len(batches), f"epoch {epoch + 1}", config.train.progress):
            state, metrics = train_step(state, sharding.to_global(batch, mesh), rng)
            step += 1  # a host counter: reading state.step would sync with the device each step
            if step % config.train.log_every_steps == 0:
                check_finite(state)
                writer.write(step, jax.device_get(metrics), prefix="train/")
        check_finite(state)
        done = epoch + 1
        if done % config.train.checkpoint_every_epochs == 0 or done == config.train.num_epochs or done == stop_at:
            checkpoint.save(
                mngr, done, state,
                {"epoch": done, "config_fingerprint": checkpoint.fingerprint(config)},
            )
        if config.eval.every_epochs and done % config.eval.every_epochs == 0 and done < config.train.num_epochs:
            res = retrieval.evaluate(model, eval_variables(state), query, gallery, config, mesh)
            writer.write(int(state.step), res, prefix="eval/")
            print(f"epoch {done}: rank-1 {res['rank1']:.4f} mAP {res['mAP']:.4f}")
    train_seconds = time.time() - t0

    # --- evaluation
    picture = os.path.join(workdir, "ranked_list.png")
    after = retrieval.evaluate(model, eval_variables(state), query, gallery, config, mesh, picture)
    writer.write(int(state.step), after, prefix="eval/")
    writer.close()
    paths["ranked_list"] = picture
    return {
        "before": before,
        "after": after,
        "paths": paths,
        "state": state,
        "train_seconds": train_seconds,
        "epochs_done": min(stop_at, config.train.num_epochs),
    }


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """``--mode=eval``: restores the newest checkpoint in ``workdir`` and evaluates it."""
    mesh = sharding.make_mesh(config.num_devices)
    train, query, gallery = open_splits(config, with_unlabeled=False)
    steps = config.data.steps_per_epoch or samplers.steps_per_epoch(
        train.labels, config.data.p, config.data.k
    )
    model, state, _, _ = create_state(config, train.num_classes, steps, mesh)
    state = checkpoint.restore_for_eval(workdir, state, config)
    picture = os.path.join(workdir, "ranked_list.png")
    after = retrieval.evaluate(model, eval_variables(state), query, gallery, config, mesh, picture)
    return {"before": None, "after": after, "paths": {"workdir": workdir, "ranked_list": picture}}
