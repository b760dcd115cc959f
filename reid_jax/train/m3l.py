"""M3L: memory-based multi-source meta-learning for domain-generalizable re-ID.

Zhao, Zhong, Yang, Luo, Lin, Li and Sebe, "Learning to Generalize Unseen Domains via
Memory-based Multi-Source Meta-Learning for Person Re-Identification", CVPR 2021
(official code: HeliosZhao/M3L). Constants as in REFERENCE.md.

Each iteration, on one domain-balanced batch (every source domain gives a P x K block):

1. One source domain is meta-test, the others meta-train (index arrays drawn in the
   step from its rng, ``reid_jax.meta.episodes``).
2. Meta-train loss L_mtr(theta): per meta-train domain, forwarded on its own (its own
   BatchNorm statistics, as the official per-domain loaders), memory identification loss
   against that domain's memory (tau 0.05) + triplet (margin 0.3); averaged over the
   meta-train domains. The MetaBN neck records each domain's feature mean and variance.
3. Inner step theta' = theta - step(grad L_mtr(theta)) (``meta.inner_solver``: 'adam',
   the official code's one Adam step from zero moments, or 'sgd', the paper's equation),
   at the current learning rate; second order by default (jax.grad of a function that
   calls jax.grad), ``meta.first_order`` stops the gradient through the inner gradient.
4. Meta-test loss L_mte(theta'): the meta-test batch through theta' with MetaBN mixing
   (one mixture per meta-train domain, std not variance), memory loss averaged over the
   mixtures + triplet on the unmixed pooled features.
5. theta <- optimizer step on grad (L_mtr(theta) + L_mte(theta')).
6. Memories: a no-grad forward of the *updated* model on every source domain's block
   (batch statistics, per domain), then M[y] <- 0.2 M[y] + 0.8 f, renormalised.

BatchNorm running statistics come from the meta-train forwards (averaged over the
meta-train domains); the meta-test and memory forwards leave them alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from reid_jax import checkpoint, errors, reporting, sharding
from reid_jax.data import augment
from reid_jax.evaluation import embed, retrieval
from reid_jax.losses import meta as meta_losses
from reid_jax.losses import metric
from reid_jax.meta import episodes, inner, metabn
from reid_jax.meta import memory as memory_lib
from reid_jax.train import domain_loop, optim, supervised
from reid_jax.train import state as state_lib

# (params, images, **metabn kwargs) -> (outputs, new batch_stats), training mode.
ApplyFn = Callable[..., tuple[dict, Any]]


@flax.struct.dataclass
class M3LState:
    """TrainState plus the class memories of every source domain.

    Attributes:
      step, params, batch_stats, opt_state, nonfinite_step: as ``state.TrainState``.
      memory: [num_classes, C] L2-normalised class centroids (all domains).
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    memory: jax.Array
    nonfinite_step: jax.Array


# ----------------------------------------------------------------------------- model
def build_model(config: ml_collections.ConfigDict) -> nn.Module:
    """The configured trunk (no neck, no classifier) under a MetaBN neck."""
    c = config.copy_and_resolve_references()
    c.model.neck = "none"
    trunk = supervised.build_model(c, 0)
    return metabn.M3LNet(trunk=trunk)


# ----------------------------------------------------------------------------- losses
def domain_loss(
    out: dict, labels: jax.Array, domain: jax.Array, memory: jax.Array,
    class_domains: jax.Array, cfg: ml_collections.ConfigDict,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(memory loss + triplet, memory loss, triplet) of one domain's block.

    With mixed neck features [K, B, C] the memory loss is averaged over the K mixtures.
    """
    neck = out["neck_features"]
    mem_fn = lambda f: meta_losses.memory_identification_loss(  # noqa: E731
        f, labels, memory, class_domains, domain, cfg.temperature
    )
    l_mem = jnp.mean(jax.vmap(mem_fn)(neck)) if neck.ndim == 3 else mem_fn(neck)
    l_tri = metric.batch_hard_triplet(out["features"], labels, margin=cfg.triplet_margin)
    return l_mem + l_tri, l_mem, l_tri


def meta_objective(
    params: Any,
    apply_fn: ApplyFn,
    memory: jax.Array,
    class_domains: jax.Array,
    mtr: tuple[jax.Array, jax.Array, jax.Array],
    mte: tuple[jax.Array, jax.Array, jax.Array],
    lr_inner: jax.Array | float,
    noise: jax.Array,
    lam: jax.Array,
    cfg: ml_collections.ConfigDict,
    fixed_mix: tuple[jax.Array, jax.Array] | None = None,
) -> tuple[jax.Array, dict]:
    """L_mtr(theta) + L_mte(theta'), theta' the inner update; differentiable in theta.

    Args:
      params: model parameters theta.
      apply_fn: training-mode apply, ``apply_fn(params, x, **metabn_kwargs)``.
      memory: [num_classes, C] memories (constant).
      class_domains: [num_classes] domain of each class.
      mtr: (images [Dm, B, ...], labels [Dm, B], domain ids [Dm]) of the meta-train domains.
      mte: (images [B, ...], labels [B], domain id []) of the meta-test domain.
      lr_inner: inner learning rate.
      noise: [Dm, B, C] standard normal draws for MetaBN.
      lam: MetaBN mixing weight.
      cfg: config.meta.
      fixed_mix: (means, stds) for MetaBN instead of the recorded ones (the recorded
        statistics are constants of the gradient, so a finite-difference check must hold
        them fixed too).

    Returns:
      (loss, aux) with aux['batch_stats'] the running statistics after the meta-train
      forwards (averaged over the meta-train domains) and scalar loss terms.
    """
    x_tr, y_tr, d_tr = mtr
    x_te, y_te, d_te = mte

    def mtr_loss(p: Any) -> tuple[jax.Array, dict]:
        def one(x: jax.Array, y: jax.Array, d: jax.Array) -> tuple[jax.Array, tuple]:
            out, stats = apply_fn(p, x)
            total, l_mem, l_tri = domain_loss(out, y, d, memory, class_domains, cfg)
            return total, (stats, out["neck_mean"], out["neck_var"], l_mem, l_tri)

        totals, (stats, means, variances, l_mem, l_tri) = jax.vmap(one)(x_tr, y_tr, d_tr)
        aux = {
            "batch_stats": jax.tree.map(lambda s: jnp.mean(s, axis=0), stats),
            "means": means, "variances": variances,
            "mtr_memory": jnp.mean(l_mem), "mtr_triplet": jnp.mean(l_tri),
        }
        return jnp.mean(totals), aux

    adapted, (l_mtr, aux) = inner.inner_update(
        mtr_loss, params, lr_inner, cfg.inner_solver, cfg.first_order, has_aux=True
    )
    # The recorded domain statistics are buffers in the official code: no gradient.
    mix = (jax.lax.stop_gradient(aux["means"]),
           jnp.sqrt(jax.lax.stop_gradient(aux["variances"])) if cfg.mix_with_std
           else jax.lax.stop_gradient(aux["variances"]))
    if fixed_mix is not None:
        mix = fixed_mix
    out_te, _ = apply_fn(adapted, x_te, mix_stats=mix, noise=noise, lam=lam)
    l_mte, l_mem_te, l_tri_te = domain_loss(out_te, y_te, d_te, memory, class_domains, cfg)
    metrics = {
        "mtr_loss": l_mtr, "mte_loss": l_mte, "mte_memory": l_mem_te, "mte_triplet": l_tri_te,
        "mtr_memory": aux["mtr_memory"], "mtr_triplet": aux["mtr_triplet"],
    }
    return l_mtr + l_mte, {"batch_stats": aux["batch_stats"], "metrics": metrics, "mix": mix}


# ----------------------------------------------------------------------------- step
def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    lr_fn: optax.Schedule,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    num_domains: int,
    class_domains: np.ndarray,
) -> Any:
    """The jitted M3L ``train_step(state, batch, rng) -> (state, metrics)`` over ``mesh``."""
    aug_cfg = config.aug.to_dict()
    mcfg = config.meta
    cls_dom = jnp.asarray(class_domains)

    def train_step(state: M3LState, batch: dict, rng: jax.Array) -> tuple[M3LState, dict]:
        rng = jax.random.fold_in(rng, state.step)
        k_aug, k_split, k_lam, k_noise = jax.random.split(rng, 4)
        images = augment.augment_batch(k_aug, batch["image"], aug_cfg)
        labels = batch["label"]

        def apply_fn(params: Any, x: jax.Array, **mix: Any) -> tuple[dict, Any]:
            out, new = model.apply({"params": params["model"], "batch_stats": state.batch_stats},
                                   x, train=True, mutable=["batch_stats"], **mix)
            return out, new["batch_stats"]

        # --- episode: one meta-test domain, the others meta-train
        mtr_idx, mte_idx = episodes.split_domains(k_split, num_domains, 1)
        take = lambda x, idx: episodes.take_domains(x, idx, num_domains, flatten=False)  # noqa: E731
        mtr = (take(images, mtr_idx), take(labels, mtr_idx), mtr_idx)
        mte = (take(images, mte_idx)[0], take(labels, mte_idx)[0], mte_idx[0])
        dim = state.memory.shape[1]
        noise = jax.random.normal(k_noise, (num_domains - 1, mte[1].shape[0], dim))
        lam = jax.random.beta(k_lam, metabn.MIX_BETA, metabn.MIX_BETA)
        lr = lr_fn(state.step)

        # --- meta-optimisation: grad of L_mtr(theta) + L_mte(theta'(theta))
        (loss, aux), grads = jax.value_and_grad(meta_objective, has_aux=True)(
            state.params, apply_fn, state.memory, cls_dom, mtr, mte, lr * mcfg.inner_lr_factor,
            noise, lam, mcfg,
        )
        updates, new_opt = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)

        # --- memories: no-grad forward of the updated model, each domain on its own
        feats = memory_features(model, new_params, state.batch_stats, images, num_domains)
        new_memory = memory_lib.update(state.memory, feats, labels, mcfg.memory_momentum)

        ok = jnp.isfinite(loss)
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)  # noqa: E731
        new_state = state.replace(
            step=state.step + 1,
            params=keep(new_params, state.params),
            batch_stats=keep(aux["batch_stats"], state.batch_stats),
            opt_state=keep(new_opt, state.opt_state),
            memory=keep(new_memory, state.memory),
            nonfinite_step=state_lib.first_nonfinite(state.nonfinite_step, state.step, ok),
        )
        metrics = {"loss": loss, "lr": lr, **aux["metrics"]}
        return new_state, metrics

    return sharding.jit_train_step(train_step, mesh)


def memory_features(
    model: nn.Module, params: Any, batch_stats: Any, images: jax.Array, num_domains: int
) -> jax.Array:
    """[D * B, C] neck features of a domain-major batch, each domain's block normalised by
    its own batch statistics (training mode, as the official update), without gradient."""

    def one(x: jax.Array) -> jax.Array:
        out, _ = model.apply({"params": params["model"], "batch_stats": batch_stats}, x,
                             train=True, mutable=["batch_stats"])
        return out["neck_features"]

    feats = jax.vmap(one)(episodes.by_domain(images, num_domains))
    return jax.lax.stop_gradient(feats.reshape((-1, feats.shape[-1])))


# ----------------------------------------------------------------------------- state
def create_state(
    config: ml_collections.ConfigDict, num_classes: int, steps_per_epoch: int, mesh: jax.sharding.Mesh
) -> tuple[nn.Module, M3LState, optax.GradientTransformation, optax.Schedule]:
    """Model, replicated state with a zero memory, transform and schedule."""
    model = build_model(config)
    x = jnp.zeros((1, config.data.height, config.data.width, 3), jnp.float32)
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(config.seed))
    params = {"model": variables["params"]}
    dim = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)["features"].shape[-1]
    tx, lr_fn = optim.make_optimizer(config.optim, params, steps_per_epoch, config.train.num_epochs)
    state = M3LState(
        step=jnp.zeros((), jnp.int32), params=params, batch_stats=variables["batch_stats"],
        opt_state=tx.init(params), memory=jnp.zeros((num_classes, dim), jnp.float32),
        nonfinite_step=jnp.full((), -1, jnp.int32),
    )
    return model, sharding.replicate(state, mesh), tx, lr_fn


def init_memory(
    model: nn.Module, state: M3LState, train: Any, config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
) -> M3LState:
    """Fills the memory with the normalised class means of the current model's features
    (evaluation mode, as the official code's initial feature extraction)."""
    fn = embed.make_embed_fn(model, mesh, "neck_features", flip=False)
    feats = embed.extract_features(
        fn, eval_variables(state), train, mesh, config.eval.batch_size, config.data.height,
        config.data.width, config.data.num_threads, desc="memory init",
        progress=config.train.progress,
    )
    mem = memory_lib.init_from_features(feats, train.labels, train.num_classes)
    return state.replace(memory=sharding.replicate(jnp.asarray(mem), mesh))


def eval_variables(state: M3LState) -> dict:
    """The variables that ``model.apply`` takes."""
    return {"params": state.params["model"], "batch_stats": state.batch_stats}


# ----------------------------------------------------------------------------- main loop
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains M3L (resuming from ``workdir`` if it holds a checkpoint), then evaluates.

    Returns:
      {'before', 'after', 'paths', 'state', 'train_seconds', 'epochs_done'}.
    """
    # --- setup
    os.makedirs(workdir, exist_ok=True)
    mesh = sharding.make_mesh(config.num_devices)
    reporting.write_config(config, workdir)
    writer = reporting.MetricWriter(workdir)

    # --- data
    train, query, gallery = supervised.open_splits(config)
    num_domains = episodes.num_domains_of(train.domains)
    if num_domains < 2:
        raise errors.ReidError(f"M3L needs several source domains; config.data.train names {num_domains}.")
    p, k = config.data.p, config.data.k
    if (num_domains * p * k) % mesh.size:
        raise errors.ReidError(
            f"batch {num_domains} domains x {p} x {k} is not divisible by {mesh.size} devices."
        )
    steps = config.data.steps_per_epoch or episodes.domain_steps_per_epoch(
        train.labels, train.domains, p, k
    )
    cls_dom = memory_lib.class_domains(train.labels, train.domains, train.num_classes)

    # --- model and state
    model, state, tx, lr_fn = create_state(config, train.num_classes, steps, mesh)
    train_step = make_train_step(model, tx, lr_fn, config, mesh, num_domains, cls_dom)

    # --- checkpoint (the memory is part of the state)
    mngr = checkpoint.manager(workdir)
    start_epoch = 0
    restored = checkpoint.restore_latest(mngr, state, config)
    if restored is not None:
        state, meta = restored
        start_epoch = int(meta["epoch"])
        print(f"resumed from {mngr.directory} at epoch {start_epoch} (step {int(state.step)})")
    else:
        state = init_memory(model, state, train, config, mesh)
    paths = reporting.run_paths(workdir, writer, mngr.directory)

    # --- loop
    state, train_seconds, stop_at = domain_loop.train_domain_epochs(
        train_step, state, train, config, mesh, writer, mngr, start_epoch, steps
    )

    # --- evaluation on the unseen target
    picture = os.path.join(workdir, "ranked_list.png")
    after = retrieval.evaluate(model, eval_variables(state), query, gallery, config, mesh, picture)
    writer.write(int(state.step), after, prefix="eval/")
    writer.close()
    paths["ranked_list"] = picture
    return {"before": None, "after": after, "paths": paths, "state": state,
            "train_seconds": train_seconds, "epochs_done": stop_at}


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """``--mode=eval``: restores the newest checkpoint in ``workdir`` and evaluates it."""
    mesh = sharding.make_mesh(config.num_devices)
    train, query, gallery = supervised.open_splits(config)
    model, state, _, _ = create_state(config, train.num_classes, 1, mesh)
    state = checkpoint.restore_for_eval(workdir, state, config)
    after = retrieval.evaluate(model, eval_variables(state), query, gallery, config, mesh)
    return {"before": None, "after": after, "paths": {"workdir": workdir}}
