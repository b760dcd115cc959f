"""TKP: temporal knowledge propagation for image-to-video re-ID (Gu et al., ICCV 2019).

An image network and a video network (``reid_jax/models/video.py`` ``TKPNet``) see the
same clips: the video network the P x K clips of T frames, the image network each of
their P K T frames as a picture (guxinqian/TKP train.py:273-274, the clip's label
repeated T times, 258). The loss (train.py:286) is

  CE(video) + CE(image) + L_I2V + L_V2I + L_I2I + L_V2V + L_F + L_D

with ``losses/tkp.py``: the integrated triplet (batch-hard across the two networks'
features, margin 0.3) and the two propagation terms, which pull the image network's
frame features (L_F) and their distance matrix (L_D) towards the video network's, the
video side detached. The shared classifier has no label smoothing (train.py:159). At
test the image network embeds the query pictures and the video network the gallery
tracklets (``image_to_video`` evaluator); ``video`` evaluates the video network alone.

``tkp.feature_weight = tkp.distance_weight = 0`` is the same pair of networks trained
without propagation: the comparison of the paper's ablation (its Table 1 baseline).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from reid_jax import errors
from reid_jax.config_schema import Key
from reid_jax.losses import classification, metric
from reid_jax.losses import tkp as tkp_losses
from reid_jax.train import forward, loop, step, video
from reid_jax.train import state as state_lib

CONFIG = {
    "tkp": {
        "id_weight": Key(1.0, "Weight of each network's identity cross-entropy (TKP 1).",
                         low=0.0),
        "label_smoothing": Key(0.0, "Label smoothing of the cross-entropies (TKP none).",
                               low=0.0, high=1.0),
        "triplet_weight": Key(1.0, "Weight of each of the four integrated triplet terms "
                              "(I2V, V2I, I2I, V2V; TKP 1).", low=0.0),
        "triplet_margin": Key(metric.TRIPLET_MARGIN, "Margin of the integrated triplet.",
                              low=0.0),
        "feature_weight": Key(1.0, "Weight of the feature propagation L_F (TKP 1; 0 = off).",
                              low=0.0),
        "distance_weight": Key(1.0, "Weight of the distance propagation L_D (TKP 1; 0 = off).",
                               low=0.0),
        "teacher_gradient": Key(False, "Let L_F and L_D train the video network too (TKP's "
                                "--bp_to_vid; off by default there)."),
    },
}


def validate(config: ml_collections.ConfigDict) -> None:
    """Cross-key rules: clip batches (shared with the video trainer)."""
    video.check_clip_config(config)
    if config.tkp.id_weight == 0 and config.tkp.triplet_weight == 0:
        raise errors.ReidError(
            "config.tkp.id_weight and tkp.triplet_weight are both 0: nothing trains the "
            "networks; set one above 0.")


def loss_fn(fwd: forward.Forward, config: ml_collections.ConfigDict) -> step.LossFn:
    """TKP's loss on one augmented batch of clips (see the module docstring)."""
    c = config.tkp
    t = fwd.clip_len

    def loss(state: state_lib.State, params: dict, images: jax.Array, batch: dict,
             key: jax.Array) -> tuple:
        out, stats = fwd(params["model"], state.train.batch_stats, images, key)
        img, vid = out["image"], out["video"]
        frame_labels = batch["label"]
        clip_labels = video.clip_batch(batch, t)["label"]
        terms = {
            "video_id_loss": classification.cross_entropy(vid["logits"], clip_labels,
                                                          c.label_smoothing),
            "image_id_loss": classification.cross_entropy(img["logits"], frame_labels,
                                                          c.label_smoothing),
        }
        trip = tkp_losses.integrated_triplet(img["features"], frame_labels, vid["features"],
                                             clip_labels, c.triplet_margin)
        terms.update({f"{k}_loss": v for k, v in trip.items()})
        frames = vid["frame_features"].reshape(img["features"].shape)
        terms["feature_propagation"] = tkp_losses.feature_propagation(
            img["features"], frames, c.teacher_gradient)
        terms["distance_propagation"] = tkp_losses.distance_propagation(
            img["features"], frames, c.teacher_gradient)
        total = (c.id_weight * (terms["video_id_loss"] + terms["image_id_loss"])
                 + c.triplet_weight * sum(terms[f"{k}_loss"] for k in trip)
                 + c.feature_weight * terms["feature_propagation"]
                 + c.distance_weight * terms["distance_propagation"])
        terms["image_train_acc"] = jnp.mean(jnp.argmax(img["logits"], -1) == frame_labels)
        terms["video_train_acc"] = jnp.mean(jnp.argmax(vid["logits"], -1) == clip_labels)
        return total, {"batch_stats": stats, "metrics": terms}

    return loss


def build(ctx: loop.Context) -> loop.Trainer:
    """The TKP trainer for ``ctx.config``."""
    return video.clip_trainer(ctx, loss_fn)
