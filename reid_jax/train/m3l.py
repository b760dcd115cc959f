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

BatchNorm running statistics move as in the official code, where the model stays in
training mode: with every meta-train forward (one per domain, in order) and every memory
forward (one per source domain), each an EMA step (``forward.compose_running_stats``);
the meta-test forward through theta' leaves them alone here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from reid_jax import errors, sharding
from reid_jax.config_schema import Key
from reid_jax.data import augment
from reid_jax.evaluation import embed
from reid_jax.losses import meta as meta_losses
from reid_jax.losses import metric
from reid_jax.meta import episodes, inner, metabn
from reid_jax.meta import memory as memory_lib
from reid_jax.models import resnet, zoo
from reid_jax.train import forward, init, loop, optim
from reid_jax.train import state as state_lib

# (params, images, **metabn kwargs) -> (outputs, new batch_stats), training mode.
ApplyFn = Callable[..., tuple[dict, Any]]

CONFIG = {
    "meta": {
        "temperature": Key(0.05, "Memory softmax temperature tau.", low=1e-6),
        "memory_momentum": Key(0.2, "Weight of the old memory entry.", low=0.0, high=1.0),
        "triplet_margin": Key(0.3, "Triplet margin.", low=0.0),
        "inner_solver": Key("adam", "Inner step: the official one-step Adam, or the paper's "
                            "SGD equation.", choices=tuple(inner.SOLVERS)),
        "inner_lr_factor": Key(1.0, "Inner lr = this x the current lr.", low=0.0),
        "first_order": Key(False, "Treat the inner gradient as a constant."),
        "mix_with_std": Key(True, "MetaBN samples with the std (False: the official "
                            "variance-as-std)."),
    },
}


@flax.struct.dataclass
class M3LState:
    """TrainState plus the class memories of every source domain.

    Attributes:
      train: the common TrainState.
      memory: [num_classes, C] L2-normalised class centroids (all domains).
    """

    train: state_lib.TrainState
    memory: jax.Array


def validate(config: ml_collections.ConfigDict) -> None:
    """M3L's rules: its own MetaBN neck, whole-batch BatchNorm."""
    if config.model.name != "reid_net" or config.model.head != "global":
        raise errors.ReidError("M3L's network is a global-feature trunk: model.name='reid_net', "
                               "model.head='global'.")
    if config.train.bn_group_size:
        raise errors.ReidError("config.train.bn_group_size is not supported by M3L; set 0.")
    if len(init.init_runs(config)) > 1:
        raise errors.ReidError("config.model.init_from_run names one earlier run here.")


def build_model(config: ml_collections.ConfigDict) -> nn.Module:
    """The configured trunk (no neck, no classifier) under a MetaBN neck."""
    trunk_cfg = config.model.copy_and_resolve_references()
    trunk_cfg.neck = "none"
    return metabn.M3LNet(trunk=zoo.build_model(trunk_cfg, 0))


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
      (loss, aux) with aux['domain_stats'] the running statistics each meta-train forward
      produced ([Dm] leading axis, in domain order) and scalar loss terms.
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
            "domain_stats": stats,
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
    return l_mtr + l_mte, {"domain_stats": aux["domain_stats"], "metrics": metrics, "mix": mix}


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    lr_fn: optim.Schedule,
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
        st = state.train
        k_aug, k_split, k_lam, k_noise = jax.random.split(jax.random.fold_in(rng, st.step), 4)
        images = augment.augment_batch(k_aug, batch["image"], aug_cfg)
        labels = batch["label"]

        def apply_fn(params: Any, x: jax.Array, **mix: Any) -> tuple[dict, Any]:
            out, new = model.apply({"params": params["model"], "batch_stats": st.batch_stats},
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
        lr = lr_fn(st.step, st.epoch)

        # --- meta-optimisation: grad of L_mtr(theta) + L_mte(theta'(theta))
        (loss, aux), grads = jax.value_and_grad(meta_objective, has_aux=True)(
            st.params, apply_fn, state.memory, cls_dom, mtr, mte, lr * mcfg.inner_lr_factor,
            noise, lam, mcfg,
        )
        new_train, ok = st.apply_gradients(tx, grads, loss, st.batch_stats)

        # --- memories: no-grad forward of the updated model, each domain on its own
        feats, mem_stats = memory_features(model, new_train.params, st.batch_stats, images,
                                           num_domains)
        stats = forward.compose_running_stats(
            st.batch_stats,
            jax.tree.map(lambda a, b: jnp.concatenate([a, b]), aux["domain_stats"], mem_stats),
            resnet.BN_MOMENTUM,
        )
        new_train = new_train.replace(batch_stats=state_lib.keep_if(ok, stats, st.batch_stats))
        new_memory = memory_lib.update(state.memory, feats, labels, mcfg.memory_momentum)
        metrics = {"loss": loss, "lr": lr, "grad_norm": state_lib.grad_norm(grads),
                   **aux["metrics"]}
        return state.replace(train=new_train,
                             memory=state_lib.keep_if(ok, new_memory, state.memory)), metrics

    return sharding.jit_train_step(train_step, mesh)


def memory_features(
    model: nn.Module, params: Any, batch_stats: Any, images: jax.Array, num_domains: int
) -> tuple[jax.Array, Any]:
    """[D * B, C] neck features of a domain-major batch, each domain's block normalised by
    its own batch statistics (training mode, as the official update), without gradient,
    and the running statistics each domain's forward produced ([D] leading axis)."""

    def one(x: jax.Array) -> tuple[jax.Array, Any]:
        out, new = model.apply({"params": params["model"], "batch_stats": batch_stats}, x,
                               train=True, mutable=["batch_stats"])
        return out["neck_features"], new["batch_stats"]

    feats, stats = jax.vmap(one)(episodes.by_domain(images, num_domains))
    return jax.lax.stop_gradient(feats.reshape((-1, feats.shape[-1]))), stats


def build(ctx: loop.Context) -> loop.Trainer:
    """The M3L trainer for ``ctx.config``."""
    config, mesh = ctx.config, ctx.mesh
    train, num_domains, steps = episodes.open_sources(config.data, mesh.size, 2, "M3L")
    cls_dom = memory_lib.class_domains(train.labels, train.domains, train.num_classes)
    model = build_model(config)
    net, stats = init.model_variables(model, config, jax.random.key(config.seed),
                                      load=not ctx.for_eval)
    params = {"model": net}
    x = jax.ShapeDtypeStruct((1, config.data.height, config.data.width, 3), jnp.float32)
    dim = jax.eval_shape(lambda v, x: model.apply(v, x, train=False),
                         {"params": net, "batch_stats": stats}, x)["features"].shape[-1]
    tx, lr_fn = optim.make_optimizer(config.optim, params, steps, config.train.num_epochs)
    state = M3LState(state_lib.TrainState.create(params, stats, tx.init(params)),
                     jnp.zeros((train.num_classes, dim), jnp.float32))
    d = config.data

    def start(st: M3LState) -> M3LState:
        """Memories from the normalised class means of the initial model's features
        (evaluation mode, as the official code's initial feature extraction)."""
        fn = embed.make_embed_fn(model, mesh, "neck_features", flip=False)
        feats = embed.extract_features(
            fn, state_lib.eval_variables(st), train, mesh, config.eval.batch_size, d.height,
            d.width, d.num_threads, desc="memory init", progress=config.train.progress,
            resize=d.resize,
        )
        mem = memory_lib.init_from_features(feats, train.labels, train.num_classes)
        return st.replace(memory=sharding.replicate(jnp.asarray(mem), mesh))

    def prepare_epoch(st: M3LState, epoch: int) -> loop.Epoch:
        return loop.Epoch(st, train, episodes.domain_pk_batches(
            train.labels, train.camera_ids, train.domains, d.p, d.k, config.seed, epoch, steps))

    return loop.Trainer(
        model=model,
        state=sharding.replicate(state, mesh),
        train_step=make_train_step(model, tx, lr_fn, config, mesh, num_domains, cls_dom),
        prepare_epoch=prepare_epoch,
        eval_variables=state_lib.eval_variables,
        start=start,
    )
