"""MetaBIN: meta-learned batch-instance normalisation for domain generalization.

Choi, Kim, Jeong, Park and Kim, "Meta Batch-Instance Normalization for Generalizable
Person Re-Identification", CVPR 2021 (official code: bismex/MetaBIN, a fast-reid fork).
Constants as in REFERENCE.md (domain-generalization section) and the official config.

Each iteration, on one domain-balanced batch (every source domain gives a P x K block,
see ``reid_jax.meta.episodes``):

1. Base step: CE + triplet on all source domains, through the BIN network, updating every
   parameter except the BIN gates (optimizer ``tx_base`` over the non-gate tree).
   BatchNorm running statistics are updated here, and only here.
2. Meta step (only the gates are meta-learned): the source domains are split at random
   into meta-train and meta-test (index arrays drawn in the step, not Python branches);
   meta-train loss L_mtr(g) = inter-domain soft-margin triplet + triplet (margin 0.3) +
   SCT on the meta-train domains; inner update g' = clamp(g - a_t * dL_mtr/dg, 0, 1) with
   a cyclic a_t in [0.001, 0.1]; meta-test loss L_mte = triplet on the meta-test domains
   through g'; the gates take an SGD step (no momentum, no weight decay, lr = 10 x base lr)
   on d L_mte(g'(g)) / dg -- the exact second-order gradient through the inner step --
   and are clamped to [0, 1]. BatchNorm uses batch statistics in the meta step but the
   running statistics it would produce are dropped (frozen).

Deviation, said plainly: the official code draws separate mini-batches for the base and
the meta steps; here both use the same (augmented) batch, which halves the data loading.
With ``meta.enabled=False`` the trainer runs the base step alone (the baseline without
meta-learning, on the same domain-balanced batches).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from reid_jax import checkpoint, errors, reporting, sharding
from reid_jax.data import augment
from reid_jax.evaluation import retrieval
from reid_jax.losses import meta as meta_losses
from reid_jax.losses import metric
from reid_jax.meta import episodes, inner
from reid_jax.models import bin as bin_lib
from reid_jax.train import domain_loop, optim, supervised
from reid_jax.train import state as state_lib

# Apply in training mode: (params, batch_stats, images) -> (outputs, new batch_stats).
ApplyFn = Callable[[Any, Any, jax.Array], tuple[dict, Any]]


def is_gate(path: tuple[str, ...]) -> bool:
    """Key-path predicate of the BIN gates (for ``inner.partition``)."""
    return path[-1] == bin_lib.GATE_NAME


# ----------------------------------------------------------------------------- losses
def meta_train_loss(
    out: dict, labels: jax.Array, domains: jax.Array, num_domains: int, cfg: ml_collections.ConfigDict
) -> tuple[jax.Array, dict]:
    """L_mtr: inter-domain soft-margin triplet + triplet + SCT on the pre-neck features."""
    f = out["features"]
    terms = {
        "mtr_inter": meta_losses.inter_domain_triplet(f, labels, domains),
        "mtr_triplet": metric.batch_hard_triplet(f, labels, margin=cfg.triplet_margin),
        "mtr_sct": meta_losses.scatter_loss(f, domains, num_domains),
    }
    total = (
        cfg.inter_weight * terms["mtr_inter"]
        + cfg.triplet_weight * terms["mtr_triplet"]
        + cfg.sct_weight * terms["mtr_sct"]
    )
    return total, terms


def meta_objective(
    gates: dict,
    rest: dict,
    apply_fn: ApplyFn,
    batch_stats: Any,
    mtr: tuple[jax.Array, jax.Array, jax.Array],
    mte: tuple[jax.Array, jax.Array],
    lr_inner: jax.Array | float,
    num_domains: int,
    cfg: ml_collections.ConfigDict,
) -> tuple[jax.Array, dict]:
    """The meta-test loss through the inner gate update, as a function of the gates.

    Args:
      gates: the BIN gates (a nested dict holding only 'gate' leaves).
      rest: every other parameter (held fixed).
      apply_fn: training-mode apply; the batch statistics it returns are ignored here.
      batch_stats: BatchNorm running statistics (unused in training mode, passed through).
      mtr: (images, labels, domains) of the meta-train domains.
      mte: (images, labels) of the meta-test domains.
      lr_inner: inner learning rate of this iteration.
      num_domains: number of source domains (static, for SCT).
      cfg: config.meta.

    Returns:
      (outer loss, metrics); outer loss = L_mte(g') (+ L_mtr(g) with cfg.outer_with_mtr).
    """
    x_tr, y_tr, d_tr = mtr
    x_te, y_te = mte

    def mtr_loss(g: dict) -> tuple[jax.Array, dict]:
        out, _ = apply_fn(inner.merge(rest, g), batch_stats, x_tr)
        return meta_train_loss(out, y_tr, d_tr, num_domains, cfg)

    new_gates, (l_mtr, aux) = inner.inner_update(
        mtr_loss, gates, lr_inner, "sgd", cfg.first_order, bin_lib.clamp_gates, has_aux=True
    )
    out_te, _ = apply_fn(inner.merge(rest, new_gates), batch_stats, x_te)
    l_mte = metric.batch_hard_triplet(out_te["features"], y_te, margin=cfg.triplet_margin)
    outer = cfg.mte_weight * l_mte + (l_mtr if cfg.outer_with_mtr else 0.0)
    return outer, {**aux, "mtr_loss": l_mtr, "mte_loss": l_mte}


# ----------------------------------------------------------------------------- step
def make_train_step(
    model: nn.Module,
    tx_base: optax.GradientTransformation,
    tx_gate: optax.GradientTransformation,
    lr_fn: optax.Schedule,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    num_domains: int,
    steps_per_epoch: int,
) -> Any:
    """The jitted MetaBIN ``train_step(state, batch, rng) -> (state, metrics)`` over ``mesh``.

    ``state.params`` is {'model': ...}; ``state.opt_state`` is {'base': ..., 'gate': ...}.
    """
    aug_cfg = config.aug.to_dict()
    mcfg = config.meta
    period = max(1.0, steps_per_epoch / mcfg.inner_cycles_per_epoch)

    def apply_fn(params: dict, batch_stats: Any, x: jax.Array) -> tuple[dict, Any]:
        out, new_vars = model.apply(
            {"params": params["model"], "batch_stats": batch_stats}, x, train=True,
            mutable=["batch_stats"],
        )
        return out, new_vars["batch_stats"]

    def train_step(
        state: state_lib.TrainState, batch: dict, rng: jax.Array
    ) -> tuple[state_lib.TrainState, dict]:
        rng = jax.random.fold_in(rng, state.step)
        k_aug, k_split = jax.random.split(rng)
        images = augment.augment_batch(k_aug, batch["image"], aug_cfg)
        labels, domains = batch["label"], batch["domain"]
        gates, rest = inner.partition(state.params, is_gate)

        # --- base step: every non-gate parameter, BN running statistics updated.
        def base_loss(rest_p: dict) -> tuple[jax.Array, tuple[dict, Any, dict]]:
            out, stats = apply_fn(inner.merge(rest_p, gates), state.batch_stats, images)
            terms = supervised.loss_terms(out, labels, None, config.loss)
            return terms["loss"], (terms, stats, out)

        (loss, (terms, new_stats, out)), grads = jax.value_and_grad(base_loss, has_aux=True)(rest)
        updates, base_opt = tx_base.update(grads, state.opt_state["base"], rest)
        new_rest = optax.apply_updates(rest, updates)
        metrics = dict(terms)
        metrics["train_acc"] = jnp.mean(jnp.argmax(out["logits"], -1) == labels)
        metrics["lr"] = lr_fn(state.step)
        ok = jnp.isfinite(loss)

        # --- meta step: gates only, BN running statistics frozen.
        new_gates, gate_opt = gates, state.opt_state["gate"]
        if mcfg.enabled:
            mtr_idx, mte_idx = episodes.split_domains(k_split, num_domains, mcfg.num_meta_test)
            take = lambda x, idx: episodes.take_domains(x, idx, num_domains)  # noqa: E731
            mtr = (take(images, mtr_idx), take(labels, mtr_idx), take(domains, mtr_idx))
            mte = (take(images, mte_idx), take(labels, mte_idx))
            lr_inner = inner.cyclic_lr(state.step, mcfg.inner_lr_low, mcfg.inner_lr_high, period)
            (outer, aux), g_grads = jax.value_and_grad(meta_objective, has_aux=True)(
                gates, new_rest, apply_fn, new_stats, mtr, mte, lr_inner, num_domains, mcfg
            )
            g_updates, gate_opt = tx_gate.update(g_grads, state.opt_state["gate"], gates)
            new_gates = bin_lib.clamp_gates(optax.apply_updates(gates, g_updates))
            metrics.update(aux)
            metrics["meta_loss"] = outer
            metrics["lr_inner"] = lr_inner
            ok = ok & jnp.isfinite(outer)
        if jax.tree.leaves(new_gates):
            flat = jnp.concatenate([g.ravel() for g in jax.tree.leaves(new_gates)])
            metrics["gate_mean"] = jnp.mean(flat)

        # A non-finite loss skips the whole update and records the step.
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)  # noqa: E731
        new_state = state.replace(
            step=state.step + 1,
            params=keep(inner.merge(new_rest, new_gates), state.params),
            batch_stats=keep(new_stats, state.batch_stats),
            opt_state=keep({"base": base_opt, "gate": gate_opt}, state.opt_state),
            nonfinite_step=state_lib.first_nonfinite(state.nonfinite_step, state.step, ok),
        )
        return new_state, metrics

    return sharding.jit_train_step(train_step, mesh)


# ----------------------------------------------------------------------------- state
def make_optimizers(
    config: ml_collections.ConfigDict, params: dict, steps_per_epoch: int
) -> tuple[optax.GradientTransformation, optax.GradientTransformation, optax.Schedule]:
    """(base transform over the non-gate tree, gate SGD, base schedule).

    The gate optimizer is plain SGD (no momentum, no weight decay) at
    ``meta.gate_lr_factor`` (10, REFERENCE.md) times the base learning rate.
    """
    _, rest = inner.partition(params, is_gate)
    tx_base, lr_fn = optim.make_optimizer(
        config.optim, rest, steps_per_epoch, config.train.num_epochs,
        center_weight=config.loss.center_weight, center_lr=config.loss.center_lr,
    )
    factor = config.meta.gate_lr_factor
    tx_gate = optax.sgd(lambda step: factor * lr_fn(step))
    return tx_base, tx_gate, lr_fn


def create_state(
    config: ml_collections.ConfigDict, num_classes: int, steps_per_epoch: int, mesh: jax.sharding.Mesh
) -> tuple[nn.Module, state_lib.TrainState, tuple, optax.Schedule]:
    """Model, replicated initial state, (tx_base, tx_gate) and the base schedule."""
    if config.loss.center_weight > 0:
        raise errors.ReidError("the MetaBIN trainer has no center loss; set loss.center_weight=0.")
    model = supervised.build_model(config, num_classes)
    params, batch_stats = supervised.init_variables(
        model, config, num_classes, jax.random.key(config.seed)
    )
    if config.meta.enabled and config.model.norm != "bin":
        raise errors.ReidError("MetaBIN meta-learns BIN gates: set model.norm='bin'.")
    tx_base, tx_gate, lr_fn = make_optimizers(config, params, steps_per_epoch)
    gates, rest = inner.partition(params, is_gate)
    opt_state = {"base": tx_base.init(rest), "gate": tx_gate.init(gates)}
    state = state_lib.TrainState.create(params, batch_stats, opt_state)
    return model, sharding.replicate(state, mesh), (tx_base, tx_gate), lr_fn


# ----------------------------------------------------------------------------- main loop
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains MetaBIN (resuming from ``workdir`` if it holds a checkpoint), then evaluates.

    Returns:
      {'before', 'after', 'paths', 'state', 'train_seconds', 'epochs_done'} as the
      supervised trainer.
    """
    # --- setup
    os.makedirs(workdir, exist_ok=True)
    mesh = sharding.make_mesh(config.num_devices)
    reporting.write_config(config, workdir)
    writer = reporting.MetricWriter(workdir)

    # --- data: one domain-balanced P x K block per source domain per batch
    train, query, gallery = supervised.open_splits(config)
    num_domains = episodes.num_domains_of(train.domains)
    if config.meta.enabled and num_domains < 2:
        raise errors.ReidError(
            f"MetaBIN needs several source domains; config.data.train names {num_domains}."
        )
    p, k = config.data.p, config.data.k
    if (num_domains * p * k) % mesh.size:
        raise errors.ReidError(
            f"batch {num_domains} domains x {p} x {k} is not divisible by {mesh.size} devices."
        )
    steps = config.data.steps_per_epoch or episodes.domain_steps_per_epoch(
        train.labels, train.domains, p, k
    )

    # --- model and state
    model, state, (tx_base, tx_gate), lr_fn = create_state(config, train.num_classes, steps, mesh)
    train_step = make_train_step(model, tx_base, tx_gate, lr_fn, config, mesh, num_domains, steps)

    # --- checkpoint
    mngr = checkpoint.manager(workdir)
    start_epoch = 0
    restored = checkpoint.restore_latest(mngr, state, config)
    if restored is not None:
        state, meta = restored
        start_epoch = int(meta["epoch"])
        print(f"resumed from {mngr.directory} at epoch {start_epoch} (step {int(state.step)})")
    paths = reporting.run_paths(workdir, writer, mngr.directory)

    # --- loop
    state, train_seconds, stop_at = domain_loop.train_domain_epochs(
        train_step, state, train, config, mesh, writer, mngr, start_epoch, steps
    )

    # --- evaluation on the unseen target
    picture = os.path.join(workdir, "ranked_list.png")
    after = retrieval.evaluate(
        model, supervised.eval_variables(state), query, gallery, config, mesh, picture
    )
    writer.write(int(state.step), after, prefix="eval/")
    writer.close()
    paths["ranked_list"] = picture
    return {"before": None, "after": after, "paths": paths, "state": state,
            "train_seconds": train_seconds, "epochs_done": stop_at}


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """``--mode=eval``: restores the newest checkpoint in ``workdir`` and evaluates it."""
    mesh = sharding.make_mesh(config.num_devices)
    train, query, gallery = supervised.open_splits(config)
    steps = config.data.steps_per_epoch or episodes.domain_steps_per_epoch(
        train.labels, train.domains, config.data.p, config.data.k
    )
    model, state, _, _ = create_state(config, train.num_classes, steps, mesh)
    state = checkpoint.restore_for_eval(workdir, state, config)
    after = retrieval.evaluate(model, supervised.eval_variables(state), query, gallery, config, mesh)
    return {"before": None, "after": after, "paths": {"workdir": workdir}}
