r"""TKP: temporal knowledge propagation for image-to-video re-ID (Gu et al., "Temporal
Knowledge Propagation for Image-to-Video Person Re-identification", ICCV 2019; trainer
``tkp``, ``reid_jax/train/tkp.py``; losses ``reid_jax/losses/tkp.py``).

Published recipe (guxinqian/TKP @320ce80, train.py unless noted): two ImageNet
ResNet-50s with last stride 1, an image network and a video network
(models/ResNet.py:87-159), no BNNeck, one linear classifier shared by both (155);
256 x 128 input resized bicubic (37-38, 91); clips of T = 4 frames 8 apart from a random
start (40-41, 96; transforms/temporal_transforms.py:72-109); 4 identities x 4 tracklets
= 16 clips, 64 frames for the image network (45, 52); augmentation: a horizontal flip
drawn once per clip, nothing else (90-95; utils/video_loader.py:95); Adam lr 3e-4,
weight decay 5e-4 (48, 51, 163-167), x0.1 at epochs 60 and 120, stepped at each epoch's
start (49-50, 168, 197), 150 epochs (43), no warmup; loss CE(video) + CE(image) (no
label smoothing, 159) + the four integrated triplet terms (margin 0.3, 162) + L_F +
L_D, every weight 1 (286), the video side of L_F and L_D detached (57). Test: I2V with
the first frame of each query tracklet (utils/data_manager.py:72-76) against gallery
tracklets embedded from all their frames (test.py:123-138), L2-normalised features and
cosine distance (221-234); MARS with the query tracklets added to the gallery
(``mars/tkp``; test.py:172-176).
Published (the project's material, ../shared/REFERENCE.md): MARS I2V rank-1 75.6 /
mAP 65.1; iLIDS-VID I2V rank-1 54.6 (top-5 79.4, top-10 86.9). The TKP repository
states no number.

Deliberate deviations: TKP's video network is a C2D ResNet-50 with five spatio-temporal
non-local blocks (models/ResNet.py:102-114); ours is the plain per-frame ResNet-50 with
temporal average pooling (the non-local blocks attend across the frames of a clip,
which ``reid_jax/models/non_local.py``'s per-picture blocks do not); at test we embed
tracklets in clips of 4 with the last clip padded by repeating its frames, TKP averages
all frames unpadded (the same when 4 divides the length); our mAP is the plain average
precision of torchreid / fast-reid, TKP's evaluation the trapezoid rule
(utils/eval_metrics.py:28), slightly different; on iLIDS-VID TKP trains camera 1 on a
single frame per person and camera 2 on 8-frame windows (utils/data_manager.py:350-369),
we train both cameras' tracklets as clips.

``--config.tkp.feature_weight=0 --config.tkp.distance_weight=0`` trains the same two
networks without propagation (the comparison the paper's claim rests on).

Commands:
  # synthetic tracklets, CPU:
  python -m reid_jax.main --config experiments/tkp.py:synthetic --workdir runs/tkp_syn
  python -m reid_jax.main --config experiments/tkp.py:synthetic --workdir runs/tkp_syn_noprop \
      --config.tkp.feature_weight=0 --config.tkp.distance_weight=0
  # published recipe on MARS (GPU; build mars/tkp first, data_builders/README.md):
  python -m reid_jax.main --config experiments/tkp.py:mars --workdir runs/tkp_mars \
      --config.model.init_from=/path/resnet50_flax

Arguments: synthetic, synthetic_tiny (tests), mars, dukemtmc_video, ilids_vid.
"""

from __future__ import annotations

import ml_collections

from experiments import common
from experiments import video as video_configs

REAL = {"mars": "mars/tkp", "dukemtmc_video": "dukemtmc_video/standard",
        "ilids_vid": "ilids_vid/s0"}
ARGS = ("synthetic", "synthetic_tiny", *REAL)


def published(c: ml_collections.ConfigDict, dataset: str) -> None:
    """TKP's recipe (module docstring) on ``dataset``."""
    video_configs.video_recipe(c, dataset)
    c.data.height, c.data.width = 256, 128
    c.data.resize = "bicubic"
    c.data.p, c.data.k, c.data.clip_len = 4, 4, 4
    c.data.clip_sampling = "stride"
    c.data.clip_stride = 8
    c.optim.schedule_epoch_offset = 1  # scheduler.step() at each epoch's start
    c.optim.milestones = (60, 120)
    c.train.num_epochs = 150
    c.train.checkpoint_every_epochs = 10
    c.eval.every_epochs = 10  # train.py:62, 205
    c.eval.metric = "cosine"
    c.eval.evaluators = ("image_to_video", "video")
    if dataset.startswith("ilids_vid"):
        c.data.k = 2  # main_ilids.py:53
        c.eval.evaluators = ("image_to_video",)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """TKP config for the dataset named by ``arg``."""
    arg = common.parse_arg(arg, "synthetic", ARGS)
    c = common.base_config("tkp")
    c.model.name = "tkp"
    c.eval.evaluators = ("image_to_video", "video")
    if arg in ("synthetic", "synthetic_tiny"):
        video_configs.cpu_synthetic(c, arg == "synthetic_tiny")
        if arg == "synthetic":
            c.train.num_epochs = 8  # two networks: twice the video config's step time
    else:
        published(c, REAL[arg])
    return c
