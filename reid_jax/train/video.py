"""Video re-ID: a frame network with temporal pooling, trained on clips of tracklets.

The network is ``reid_jax/models/video.py``'s ``VideoNet`` (ResNet per frame, temporal
average pooling or temporal attention, BNNeck); the objective is the supervised one
(``config.loss``: identity cross-entropy + batch-hard triplet on the clip features, as
the MARS baselines of Gao and Nevatia 2018 and the video BoT). A batch is P identities
x K tracklets x T frames (``reid_jax/data/tracklets.py``; ``data.clip_len``,
``data.clip_sampling``), folded into one batch of P K T pictures: every frame of a clip
gets the same augmentation draw, and the loss sees one feature and one label per clip.

Evaluation: the ``video`` (video-to-video) and ``image_to_video`` evaluators
(``reid_jax/evaluation/video.py``). TKP (``reid_jax/train/tkp.py``) shares the clip
sampling of this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from reid_jax import errors, sharding
from reid_jax.data import samplers, sources, tracklets
from reid_jax.losses import objective
from reid_jax.models import zoo
from reid_jax.train import forward, init, loop, optim, step
from reid_jax.train import state as state_lib

CONFIG = {"loss": objective.CONFIG}


def check_clip_config(config: ml_collections.ConfigDict) -> None:
    """The rules every clip trainer shares: P x K tracklets, BatchNorm groups of whole
    clips, the evaluators that understand tracklets."""
    d = config.data
    if d.sampler != "pk":
        raise errors.ReidError(
            "video trainers draw P identities x K tracklets: set data.sampler='pk'.")
    frames = d.p * d.k * d.clip_len
    forward.check_bn_groups(config, frames)
    g = config.train.bn_group_size
    if g and g % d.clip_len:
        raise errors.ReidError(
            f"config.train.bn_group_size = {g} must hold whole clips of data.clip_len = "
            f"{d.clip_len} frames; make it a multiple of {d.clip_len}.")
    wrong = [e for e in config.eval.evaluators if e not in ("video", "image_to_video")]
    if wrong:
        raise errors.ReidError(
            f"config.eval.evaluators has {wrong[0]!r}: a video network is evaluated on "
            "tracklets; use ('video',) and / or ('image_to_video',).")
    if config.eval.aqe_k or config.eval.rerank:
        raise errors.ReidError(
            "config.eval.aqe_k and eval.rerank are not implemented for the video evaluators; "
            "set them to 0 / False.")
    if len(init.init_runs(config)) > 1:
        raise errors.ReidError("config.model.init_from_run names one earlier run here.")


def validate(config: ml_collections.ConfigDict) -> None:
    """Cross-key rules: clip batches, and the objective terms a clip feature supports."""
    check_clip_config(config)
    loss = config.loss
    unsupported = [name for name, on in (
        ("loss.center_weight", loss.center_weight > 0), ("loss.lsro", loss.lsro),
        ("loss.attribute_weight", loss.attribute_weight > 0),
        ("loss.verification_weight", loss.verification_weight > 0)) if on]
    if unsupported:
        raise errors.ReidError(
            f"config.{unsupported[0]} is not supported by the video trainer; set it off.")


@dataclasses.dataclass(frozen=True)
class ClipData:
    """The training tracklets of a clip trainer and its epoch length."""

    frames: sources.ReidData
    tracks: tracklets.Tracklets
    steps: int

    def epoch(self, config: ml_collections.ConfigDict, epoch: int) -> np.ndarray:
        """[steps, P K T] frame indices of ``epoch``."""
        d = config.data
        return tracklets.clip_batches(self.tracks, d.p, d.k, d.clip_len, config.seed, epoch,
                                      self.steps, d.clip_sampling, d.clip_stride)


def open_clips(ctx: loop.Context) -> ClipData:
    """The training tracklets of ``ctx.config.data`` (checked against P x K and the mesh)."""
    d = ctx.config.data
    frames = sources.open_train(d, "")
    tracks = tracklets.of(frames)
    if frames.num_classes == 0:
        raise errors.ReidError(f"{frames.name} has no identity labels; is it a training split?")
    samplers.check_pk(tracks.labels, d.p, d.k, ctx.mesh.size)
    steps = d.steps_per_epoch or tracklets.steps_per_epoch(tracks, d.p, d.k)
    return ClipData(frames, tracks, steps)


def clip_batch(batch: dict, clip_len: int) -> dict:
    """Per-clip values (label, camera, ...) of a batch of frames laid out clip by clip."""
    return {k: tracklets.clip_labels(v, clip_len) for k, v in batch.items() if k != "image"}


def loss_fn(fwd: forward.Forward, config: ml_collections.ConfigDict) -> step.LossFn:
    """The supervised objective on the clip features of one augmented batch of frames."""

    def loss(state: state_lib.State, params: dict, images: jax.Array, batch: dict,
             key: jax.Array) -> tuple:
        out, stats = fwd(params["model"], state.train.batch_stats, images, key)
        labels = clip_batch(batch, fwd.clip_len)["label"]
        terms = objective.loss_terms(out, labels, None, config.loss)
        metrics = {k: v for k, v in terms.items() if k != "loss"}
        metrics["train_acc"] = jnp.mean(jnp.argmax(out["logits"], -1) == labels)
        return terms["loss"], {"batch_stats": stats, "metrics": metrics}

    return loss


def clip_trainer(
    ctx: loop.Context,
    make_loss: Callable[[forward.Forward, ml_collections.ConfigDict], step.LossFn],
) -> loop.Trainer:
    """A trainer of one network on clip batches with ``make_loss(fwd, config)``'s loss
    (the video trainer's objective, TKP's)."""
    config, mesh = ctx.config, ctx.mesh
    data = open_clips(ctx)
    model = zoo.build_model(config.model, data.frames.num_classes)
    net, stats = init.model_variables(model, config, jax.random.key(config.seed),
                                      load=not ctx.for_eval)
    params = {"model": net}
    tx, lr_fn = optim.make_optimizer(config.optim, params, data.steps, config.train.num_epochs)
    state = state_lib.State(state_lib.TrainState.create(params, stats, tx.init(params)))
    fwd = forward.Forward.from_config(model, config)

    def prepare_epoch(st: state_lib.State, epoch: int) -> loop.Epoch:
        return loop.Epoch(st, data.frames, data.epoch(config, epoch))

    return loop.Trainer(
        model=model,
        state=sharding.replicate(state, mesh),
        train_step=sharding.jit_train_step(
            step.gradient_step(fwd, tx, lr_fn, make_loss(fwd, config)), mesh),
        prepare_epoch=prepare_epoch,
        eval_variables=state_lib.eval_variables,
    )


def build(ctx: loop.Context) -> loop.Trainer:
    """The video trainer for ``ctx.config``."""
    return clip_trainer(ctx, loss_fn)
