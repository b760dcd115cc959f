"""Pair networks trained on same / different pairs: IDLA and the gated siamese CNN.

The networks are in ``reid_jax/models/pairwise.py`` (IDLA: Ahmed et al., CVPR 2015;
gated siamese CNN: Varior et al., ECCV 2016). A step takes a P x K batch, embeds each
picture once (the tied / per-picture layers), and draws its pairs inside the jitted step
from the step's key (``losses/pairwise.py``): every picture with a positive partner and
``pairs.negatives_per_positive`` negatives, across cameras first. P = 25, K = 2 gives
IDLA's mini-batch of 150 pairs, 1:2 positives to negatives.

Hard negatives (IDLA Sec. 6.2), the last ``pairs.hard_negative_epochs`` epochs: each
picture's ``pairs.mining_candidates`` random negatives of the batch are scored by the
current network (evaluation mode, no gradient) and only the hardest counts, beside the
positive, so positives and negatives are 1:1 as in the paper; for IDLA only the top
layer (``fc2``) trains in that phase (the paper retrains its top layer; retraining
everything was less effective there). Deliberate deviation: the paper classifies all
negative pairs of the training set once, after training to convergence; we mine among
each batch's candidates at every step, with the network as it is then, which costs
``mining_candidates`` forward pair scores per picture instead of a pass over every
negative pair of the training set.

The loss: IDLA's 2-way softmax (``pairs.loss='softmax'``) or the contrastive loss
(``'contrastive'``, margin ``pairs.margin``). Evaluation ranks by the network's pair
distance (``reid_jax/evaluation/pairs.py``) through the shared evaluators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from reid_jax import errors, sharding
from reid_jax.config_schema import Key, is_
from reid_jax.data import samplers, sources
from reid_jax.evaluation import pairs as pair_scoring
from reid_jax.losses import pairwise as pair_losses
from reid_jax.models import zoo
from reid_jax.train import forward, init, loop, optim, step
from reid_jax.train import state as state_lib

CONFIG = {
    "pairs": {
        "loss": Key("softmax", "'softmax': 2-way same/different cross-entropy (IDLA); "
                    "'contrastive': contrastive loss on the feature distance (gated S-CNN).",
                    choices=("softmax", "contrastive")),
        "margin": Key(1.0, "Contrastive margin on the Euclidean distance of unit features.",
                      low=0.0, high=2.0, when=is_("pairs.loss", "contrastive"),
                      when_doc="pairs.loss='contrastive'"),
        "negatives_per_positive": Key(2, "Negative pairs per picture beside its positive "
                                      "pair (IDLA: 2).", low=1),
        "hard_negative_epochs": Key(0, "Last epochs trained on each picture's hardest "
                                    "negative, 1:1 with positives (IDLA Sec. 6.2; its top "
                                    "layer only); 0 = none.", low=0),
        "mining_candidates": Key(8, "Random negatives of the batch scored per picture to "
                                 "find its hardest.", low=1,
                                 when=lambda c: c.pairs.hard_negative_epochs > 0,
                                 when_doc="pairs.hard_negative_epochs > 0"),
    },
}

# The layer IDLA's hard-negative phase retrains (Ahmed et al. Sec. 6.2).
IDLA_TOP = "fc2"
# Which loss reads which output of which network.
LOSS_OF_MODEL = {"idla": "softmax", "gated_scnn": "contrastive"}


def validate(config: ml_collections.ConfigDict) -> None:
    """Cross-key rules: the loss matches the network, K >= 2, the mining fits a batch."""
    pc, d = config.pairs, config.data
    want = LOSS_OF_MODEL[config.model.name]
    if pc.loss != want:
        raise errors.ReidError(
            f"config.pairs.loss = {pc.loss!r} does not fit model.name = "
            f"{config.model.name!r}, which is trained with pairs.loss={want!r}."
        )
    if d.k < 2 or d.sampler != "pk":
        raise errors.ReidError(
            "the pair trainer draws positive pairs inside P x K batches: set data.sampler='pk' "
            "and data.k >= 2."
        )
    other = (d.p - 1) * d.k
    if pc.negatives_per_positive > other:
        raise errors.ReidError(
            f"config.pairs.negatives_per_positive = {pc.negatives_per_positive} exceeds the "
            f"{other} pictures of other identities in a batch; lower it or raise data.p."
        )
    if pc.hard_negative_epochs:
        if pc.hard_negative_epochs >= config.train.num_epochs:
            raise errors.ReidError(
                f"config.pairs.hard_negative_epochs = {pc.hard_negative_epochs} must leave "
                f"epochs of random negatives before it (train.num_epochs = "
                f"{config.train.num_epochs})."
            )
        if pc.mining_candidates > other:
            raise errors.ReidError(
                f"config.pairs.mining_candidates = {pc.mining_candidates} exceeds the {other} "
                "pictures of other identities in a batch; lower it or raise data.p."
            )
    if config.train.bn_group_size:
        raise errors.ReidError(
            "config.train.bn_group_size is not supported by the pair trainer; set it to 0."
        )
    if config.eval.aqe_k:
        raise errors.ReidError(
            "config.eval.aqe_k: query expansion averages features; a pair network ranks "
            "by pair scores. Set it to 0."
        )
    if len(init.init_runs(config)) > 1:
        raise errors.ReidError("config.model.init_from_run names one earlier run here.")


def loss_fn(model: Any, config: ml_collections.ConfigDict, hard_from: int) -> step.LossFn:
    """Pairs of the batch, drawn from the step's key, through the network and its loss.

    ``hard_from``: the first epoch of the hard-negative phase (never reached without one).
    """
    pc = config.pairs
    negatives = pc.negatives_per_positive

    def loss(state: state_lib.State, params: dict, images: jax.Array, batch: dict,
             key: jax.Array) -> tuple:
        st = state.train
        labels, cameras = batch["label"], batch["camera_id"]
        n = labels.shape[0]
        variables = {"params": params["model"], "batch_stats": st.batch_stats}
        f, new = model.apply(variables, images, train=True, method="embed",
                             mutable=["batch_stats"])
        first, second = pair_losses.select_pairs(jax.random.fold_in(key, 2), labels, cameras,
                                                 negatives)
        weights = None
        if pc.hard_negative_epochs:
            hard = st.epoch >= hard_from

            def mined(_: None) -> jax.Array:
                _, neg = pair_losses.candidate_scores(jax.random.fold_in(key, 3), labels,
                                                      cameras)
                _, cand = jax.lax.top_k(neg, pc.mining_candidates)  # [N, C]
                fs = jax.lax.stop_gradient(f)
                ev = {"params": jax.lax.stop_gradient(params["model"]),
                      "batch_stats": st.batch_stats}
                a, b = jnp.repeat(fs, pc.mining_candidates, axis=0), fs[cand.reshape(-1)]
                d = pair_scoring.compare_in_chunks(
                    model, ev, a, b, pair_scoring.chunk_for(a.shape[0]))["pair_distance"]
                order = pair_losses.hardest_first(cand, d.reshape(n, -1))
                return order[:, :negatives].reshape(-1)

            second = second.at[n:].set(jax.lax.cond(hard, mined, lambda _: second[n:], None))
            # Hard phase: each picture's positive and its hardest negative only (1:1).
            is_hardest = jnp.tile(jnp.arange(negatives) == 0, n)
            weights = jnp.concatenate([jnp.ones(n), jnp.where(hard, is_hardest, 1.0)])
        stats_vars = {"params": params["model"], "batch_stats": new.get("batch_stats", {})}
        # One call over the batch's pairs (BatchNorm over pairs needs them together; for
        # IDLA, chunks as at evaluation made the step 1.8x slower on CPU, not faster).
        out, new = model.apply(stats_vars, f[first], f[second], train=True,
                               method="compare", mutable=["batch_stats"])
        same = labels[first] == labels[second]
        dist = out["pair_distance"]
        if pc.loss == "softmax":
            value = pair_losses.pair_softmax_loss(out["pair_logits"], same, weights)
            correct = (dist < 0) == same  # log-odds of "different" below 0: "same"
        else:
            value = pair_losses.contrastive_loss(dist, same, pc.margin, weights)
            correct = (dist < pc.margin / 2) == same
        metrics = {
            "pair_acc": jnp.mean(correct),
            "pos_distance": jnp.mean(dist[:n]),
            "neg_distance": jnp.mean(dist[n:]),
        }
        return value, {"batch_stats": new.get("batch_stats", {}), "metrics": metrics}

    return loss


def build(ctx: loop.Context) -> loop.Trainer:
    """The pair trainer for ``ctx.config``."""
    config, mesh = ctx.config, ctx.mesh
    d = config.data
    train = sources.open_train(d, "")
    if train.num_classes == 0:
        raise errors.ReidError(f"{train.name} has no identity labels; is it a training split?")
    samplers.check_pk(train.labels, d.p, d.k, mesh.size, 0)
    steps = d.steps_per_epoch or samplers.steps_per_epoch(train.labels, d.p, d.k)
    model = zoo.build_model(config.model, 0)
    net, stats = init.model_variables(model, config, jax.random.key(config.seed),
                                      load=not ctx.for_eval)
    params = {"model": net}
    hard_from = config.train.num_epochs - config.pairs.hard_negative_epochs
    top_only = None
    if config.pairs.hard_negative_epochs and config.model.name == "idla":
        top_only = (IDLA_TOP, hard_from * steps)
    tx, lr_fn = optim.make_optimizer(config.optim, params, steps, config.train.num_epochs,
                                     top_only_from=top_only)
    state = state_lib.State(state_lib.TrainState.create(params, stats, tx.init(params)))
    fwd = forward.Forward.from_config(model, config)  # the in-step augmentation

    def prepare_epoch(st: state_lib.State, epoch: int) -> loop.Epoch:
        batches = samplers.epoch_batches(
            d.sampler, train.labels, train.camera_ids, d.p, d.k, config.seed, epoch, steps)
        return loop.Epoch(st, train, batches)

    return loop.Trainer(
        model=model,
        state=sharding.replicate(state, mesh),
        train_step=sharding.jit_train_step(
            step.gradient_step(fwd, tx, lr_fn, loss_fn(model, config, hard_from)), mesh),
        prepare_epoch=prepare_epoch,
        eval_variables=state_lib.eval_variables,
    )
