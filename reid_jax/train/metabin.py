"""MetaBIN: meta-learned batch-instance normalisation for domain generalization.

Choi, Kim, Jeong, Park and Kim, "Meta Batch-Instance Normalization for Generalizable
Person Re-Identification", CVPR 2021 (official code: bismex/MetaBIN, a fast-reid fork;
the values below are its configs/Base-DG.yml and fastreid/config/defaults.py, see the
recipe card: ``python -m reid_jax.recipes show experiments/metabin.py:grid``).

Each iteration takes two batches, as the official trainer's two loaders: a base batch
(``data.p`` identities x ``data.k`` pictures drawn from the pooled sources) and a meta
batch (``meta.domain_p`` identities x ``data.k`` from *every* source domain, domain-major,
see ``reid_jax.meta.episodes``); one host row carries both, base first.

1. Base step: the supervised objective (``config.loss``: CE + triplet) on the base batch
   through the BIN network, updating every parameter except the BIN gates (optimizer
   ``tx_base`` over the non-gate tree). BatchNorm running statistics are updated here,
   and only here.
2. Meta step (only the gates are meta-learned), after the first ``meta.first_base_steps``
   base steps: the domains of the meta batch are split at random into meta-train and
   meta-test (index arrays drawn in the step, not Python branches); meta-train loss
   L_mtr(g) = inter-domain soft-margin triplet (positives: the other domains' pictures;
   negatives: other identities of the anchor's domain) + triplet (margin 0.3) + SCT;
   inner update g' = clamp(g - a_t dL_mtr/dg) with the clamp straight-through and, by
   default, the inner gradient treated as a constant (first order, the official
   ``SECOND_ORDER False, STOP_GRADIENT True``); a_t = gate lr x a triangular cycle in
   [0.001, 0.1] (so [1e-4, 1e-2]) of 5 epochs, starting low; meta-test loss L_mte =
   triplet on the meta-test domains through g'; the gates take a plain SGD step (no
   momentum, no weight decay, a constant lr of 10 x the base lr) on dL_mte(g'(g))/dg and
   are clamped to [0, 1]. BatchNorm uses batch statistics in the meta step but the
   running statistics it would produce are dropped (frozen).

With ``meta.enabled=False`` the trainer runs the base step alone on the base batches
(the baseline without meta-learning).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from reid_jax import errors, sharding
from reid_jax.config_schema import Key
from reid_jax.data import samplers, sources
from reid_jax.losses import meta as meta_losses
from reid_jax.losses import metric, objective
from reid_jax.meta import episodes, inner
from reid_jax.models import bin as bin_lib
from reid_jax.models import zoo
from reid_jax.train import forward, init, loop, optim
from reid_jax.train import state as state_lib

# Apply in training mode: (params, batch_stats, images) -> (outputs, new batch_stats).
ApplyFn = Callable[[Any, Any, jax.Array], tuple[dict, Any]]

CONFIG = {
    "loss": objective.CONFIG,
    "meta": {
        "enabled": Key(True, "Meta-learn the BIN gates (False: the base step alone)."),
        "num_meta_test": Key(2, "Source domains drawn as meta-test each iteration "
                             "(5 sources -> 3 / 2).", low=1),
        "domain_p": Key(4, "Identities per source domain in the meta batch (x data.k "
                        "pictures; MTRAIN_MINI_BATCH 80 = 5 x 4 x 4).", low=1),
        "first_base_steps": Key(10, "Base steps before the first meta step "
                                "(META.SOLVER.INIT.FIRST_INNER_LOOP).", low=1),
        "gate_lr_factor": Key(10.0, "Gate SGD learning rate = this x optim.lr, constant "
                              "(META.SOLVER.LR_FACTOR.GATE).", low=0.0),
        "inner_cycle_low": Key(0.001, "Inner lr = gate lr x a triangular cycle from this...",
                               low=0.0),
        "inner_cycle_high": Key(0.1, "...to this (META_CYCLIC_MIDDLE_LR x / RATIO).", low=0.0),
        "inner_cycles_per_epoch": Key(0.2, "Cycles of the inner lr per epoch "
                                      "(META_CYCLIC_PERIOD_PER_EPOCH).", low=1e-6),
        "inner_clamp": Key("straight_through", "The inner update's clamp to [0, 1]: in place "
                           "as the official code (the gradient passes straight through) or "
                           "a plain clip (no gradient above 1).",
                           choices=("straight_through", "clip")),
        "triplet_margin": Key(0.3, "Margin of the meta-train and meta-test triplets.", low=0.0),
        "inter_weight": Key(1.0, "Weight of the inter-domain triplet in L_mtr.", low=0.0),
        "triplet_weight": Key(1.0, "Weight of the triplet in L_mtr.", low=0.0),
        "sct_weight": Key(1.0, "Weight of the SCT loss in L_mtr.", low=0.0),
        "mte_weight": Key(1.0, "Weight of L_mte in the gates' objective.", low=0.0),
        "outer_with_mtr": Key(False, "Gates follow L_mte(g') + L_mtr(g) (META.LOSS.COMBINED)."),
        "first_order": Key(True, "Treat the inner gradient as a constant (official: "
                           "STOP_GRADIENT True, SECOND_ORDER False)."),
    },
}


def validate(config: ml_collections.ConfigDict) -> None:
    """MetaBIN's rules: BIN layers to meta-learn, no center loss, whole-batch BatchNorm."""
    if config.loss.center_weight > 0:
        raise errors.ReidError(
            "config.loss.center_weight > 0: the MetaBIN trainer has no center loss; set it to 0."
        )
    if config.meta.enabled and config.model.norm != "bin":
        raise errors.ReidError(
            f"config.model.norm = {config.model.norm!r}: MetaBIN meta-learns BIN gates; set "
            "model.norm='bin' (or meta.enabled=False for the baseline)."
        )
    if config.train.bn_group_size:
        raise errors.ReidError("config.train.bn_group_size is not supported by MetaBIN; set 0.")
    if config.loss.lsro or len(init.init_runs(config)) > 1:
        raise errors.ReidError("MetaBIN takes no LSRO and one config.model.init_from_run.")
    if config.data.sampler != "pk":
        raise errors.ReidError("config.data.sampler: MetaBIN's base batches are 'pk'.")


def is_gate(path: tuple[str, ...]) -> bool:
    """Key-path predicate of the BIN gates (for ``inner.partition``)."""
    return path[-1] == bin_lib.GATE_NAME


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

    clamp = (bin_lib.clamp_gates_straight_through if cfg.inner_clamp == "straight_through"
             else bin_lib.clamp_gates)
    new_gates, (l_mtr, aux) = inner.inner_update(
        mtr_loss, gates, lr_inner, "sgd", cfg.first_order, clamp, has_aux=True
    )
    out_te, _ = apply_fn(inner.merge(rest, new_gates), batch_stats, x_te)
    l_mte = metric.batch_hard_triplet(out_te["features"], y_te, margin=cfg.triplet_margin)
    outer = cfg.mte_weight * l_mte + (l_mtr if cfg.outer_with_mtr else 0.0)
    return outer, {**aux, "mtr_loss": l_mtr, "mte_loss": l_mte}


def make_train_step(
    model: Any,
    tx_base: optax.GradientTransformation,
    tx_gate: optax.GradientTransformation,
    lr_fn: optim.Schedule,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    num_domains: int,
    steps_per_epoch: int,
) -> Any:
    """The jitted MetaBIN ``train_step(state, batch, rng) -> (state, metrics)`` over ``mesh``.

    ``state.train.params`` is {'model': ...}; its opt_state is {'base': ..., 'gate': ...}.
    A batch row is the base batch (``data.p * data.k``) then, with ``meta.enabled``, the
    domain-major meta batch.
    """
    fwd = forward.Forward.from_config(model, config)
    mcfg = config.meta
    n_base = config.data.p * config.data.k
    period = max(2.0, float(int(steps_per_epoch / mcfg.inner_cycles_per_epoch)))
    gate_lr = mcfg.gate_lr_factor * config.optim.lr

    def apply_fn(params: dict, batch_stats: Any, x: jax.Array) -> tuple[dict, Any]:
        return fwd(params["model"], batch_stats, x)

    def train_step(state: state_lib.State, batch: dict, rng: jax.Array) -> tuple[Any, dict]:
        st = state.train
        k_split = jax.random.fold_in(jax.random.fold_in(rng, st.step), 1)
        # The two batches are augmented apart: the base batch's draws do not depend on
        # whether a meta batch follows it.
        images = fwd.augment(rng, st.step, batch["image"][:n_base])
        if mcfg.enabled:
            meta_rng = jax.random.fold_in(rng, 2**20)
            images = jnp.concatenate(
                [images, fwd.augment(meta_rng, st.step, batch["image"][n_base:])])
        labels, domains = batch["label"], batch["domain"]
        gates, rest = inner.partition(st.params, is_gate)

        # --- base step on the base batch: every non-gate parameter, BN statistics updated.
        def base_loss(rest_p: dict) -> tuple[jax.Array, tuple[dict, Any, dict]]:
            out, stats = apply_fn(inner.merge(rest_p, gates), st.batch_stats, images[:n_base])
            terms = objective.loss_terms(out, labels[:n_base], None, config.loss)
            return terms["loss"], (terms, stats, out)

        (loss, (terms, new_stats, out)), grads = jax.value_and_grad(base_loss, has_aux=True)(rest)
        updates, base_opt = tx_base.update(grads, st.opt_state["base"], rest, epoch=st.epoch)
        new_rest = optax.apply_updates(rest, updates)
        metrics = dict(terms, lr=lr_fn(st.step, st.epoch), grad_norm=state_lib.grad_norm(grads))
        metrics["train_acc"] = jnp.mean(jnp.argmax(out["logits"], -1) == labels[:n_base])
        ok = jnp.isfinite(loss)

        # --- meta step on the meta batch: gates only, BN running statistics frozen.
        new_gates, gate_opt = gates, st.opt_state["gate"]
        if mcfg.enabled:
            x_m, y_m, d_m = images[n_base:], labels[n_base:], domains[n_base:]
            mtr_idx, mte_idx = episodes.split_domains(k_split, num_domains, mcfg.num_meta_test)
            take = lambda x, idx: episodes.take_domains(x, idx, num_domains)  # noqa: E731
            mtr = (take(x_m, mtr_idx), take(y_m, mtr_idx), take(d_m, mtr_idx))
            mte = (take(x_m, mte_idx), take(y_m, mte_idx))
            # The cyclic scheduler is stepped before each meta step: count 1 first.
            count = st.step - (mcfg.first_base_steps - 1) + 1
            lr_inner = gate_lr * inner.triangular_lr(
                count, mcfg.inner_cycle_low, mcfg.inner_cycle_high, period)
            (outer, aux), g_grads = jax.value_and_grad(meta_objective, has_aux=True)(
                gates, new_rest, apply_fn, new_stats, mtr, mte, lr_inner, num_domains, mcfg
            )
            g_updates, g_opt = tx_gate.update(g_grads, st.opt_state["gate"], gates)
            meta_on = st.step >= mcfg.first_base_steps - 1
            new_gates = state_lib.keep_if(
                meta_on, bin_lib.clamp_gates(optax.apply_updates(gates, g_updates)), gates)
            gate_opt = state_lib.keep_if(meta_on, g_opt, gate_opt)
            metrics.update(aux, meta_loss=outer, lr_inner=lr_inner)
            ok = ok & (jnp.isfinite(outer) | ~meta_on)
        if jax.tree.leaves(new_gates):
            flat = jnp.concatenate([g.ravel() for g in jax.tree.leaves(new_gates)])
            metrics.update(gate_mean=jnp.mean(flat), gate_std=jnp.std(flat),
                           gate_below_0_9=jnp.mean(flat < 0.9))

        # A non-finite loss skips the whole update and records the step.
        new_train = st.replace(
            step=st.step + 1,
            params=state_lib.keep_if(ok, inner.merge(new_rest, new_gates), st.params),
            batch_stats=state_lib.keep_if(ok, new_stats, st.batch_stats),
            opt_state=state_lib.keep_if(ok, {"base": base_opt, "gate": gate_opt}, st.opt_state),
            nonfinite_step=jnp.where(ok | (st.nonfinite_step >= 0), st.nonfinite_step, st.step),
        )
        return state.replace(train=new_train), metrics

    return sharding.jit_train_step(train_step, mesh)


def make_optimizers(
    config: ml_collections.ConfigDict, params: dict, steps_per_epoch: int
) -> tuple[optax.GradientTransformation, optax.GradientTransformation, optim.Schedule]:
    """(base transform over the non-gate tree, gate SGD, base schedule).

    The gate optimizer is plain SGD (no momentum, no weight decay) at the constant
    ``meta.gate_lr_factor`` x ``optim.lr`` (Base-DG.yml ``NORM_SCHEDULER: 'equal'``).
    """
    _, rest = inner.partition(params, is_gate)
    tx_base, lr_fn = optim.make_optimizer(
        config.optim, rest, steps_per_epoch, config.train.num_epochs,
        center_weight=config.loss.center_weight, center_lr=config.loss.center_lr,
    )
    tx_gate = optax.sgd(config.meta.gate_lr_factor * config.optim.lr)
    return tx_base, tx_gate, lr_fn


def build(ctx: loop.Context) -> loop.Trainer:
    """The MetaBIN trainer for ``ctx.config``."""
    config, mesh = ctx.config, ctx.mesh
    d, mcfg = config.data, config.meta
    train = sources.open_train(d)
    num_domains = episodes.num_domains_of(train.domains)
    if mcfg.enabled and mcfg.num_meta_test >= num_domains:
        raise errors.ReidError(
            f"MetaBIN splits {num_domains} source domain(s) into meta-train and "
            f"config.meta.num_meta_test = {mcfg.num_meta_test} meta-test domains; name more "
            "sources in data.train or lower meta.num_meta_test."
        )
    meta_batch = num_domains * mcfg.domain_p * d.k if mcfg.enabled else 0
    samplers.check_pk(train.labels, d.p, d.k, mesh.size, meta_batch)
    steps = d.steps_per_epoch or samplers.steps_per_epoch(train.labels, d.p, d.k)
    model = zoo.build_model(config.model, train.num_classes)
    net, stats = init.model_variables(model, config, jax.random.key(config.seed),
                                      load=not ctx.for_eval)
    params = {"model": net}
    tx_base, tx_gate, lr_fn = make_optimizers(config, params, steps)
    gates, rest = inner.partition(params, is_gate)
    opt_state = {"base": tx_base.init(rest), "gate": tx_gate.init(gates)}
    state = state_lib.State(state_lib.TrainState.create(params, stats, opt_state))

    def prepare_epoch(st: state_lib.State, epoch: int) -> loop.Epoch:
        rows = samplers.pk_batches(train.labels, train.camera_ids, d.p, d.k, config.seed,
                                   epoch, steps)
        if mcfg.enabled:
            rows = np.concatenate([rows, episodes.domain_pk_batches(
                train.labels, train.camera_ids, train.domains, mcfg.domain_p, d.k,
                config.seed, epoch, steps)], axis=1)
        return loop.Epoch(st, train, rows)

    return loop.Trainer(
        model=model,
        state=sharding.replicate(state, mesh),
        train_step=make_train_step(model, tx_base, tx_gate, lr_fn, config, mesh, num_domains,
                                   steps),
        prepare_epoch=prepare_epoch,
        eval_variables=state_lib.eval_variables,
    )
