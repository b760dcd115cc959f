r"""IANet: Interaction-and-Aggregation Network (Hou et al., CVPR 2019).

ResNet-50 (last stride 1) with an IA block (spatial IA, then channel IA) after the last
block of stages 2 and 3 (`model.ianet_stages=(2, 3)`; `reid_jax/models/ianet.py`), BNNeck
and classifier, trained with label-smoothed CE + batch-hard triplet (margin 0.3) on 16 x 4
batches. Optimiser as the official code (blue-blue272/ImgReID-IAnet `train.py`): Adam
3.5e-4, weight decay 5e-4, 60 epochs, x0.1 at epochs 20 and 40, no warmup; random erasing
0.5. Differences: the official triplet uses cosine distances on the BatchNorm'd feature,
ours Euclidean on the pooled one (BoT); no center loss.
Published (rank-1 / mAP): Market-1501 94.4 / 83.1, DukeMTMC 87.1 / 73.4.

Commands:
  python -m reid_jax.main --config experiments/ianet.py:synthetic --workdir runs/ianet_synth
  python -m reid_jax.main --config experiments/ianet.py:cuhk01 --workdir runs/ianet_cuhk01
  python -m reid_jax.main --config experiments/ianet.py:market1501 --workdir runs/ianet_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: as experiments/bot.py.
"""

from __future__ import annotations

import ml_collections

from experiments import bot, common

ARGS = bot.ARGS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """IANet config for the dataset or variant named by ``arg``."""
    c = bot.get_config(arg)
    c.model.ianet_stages = (2, 3)
    c.model.ianet_patch = 1  # the official code relates single positions
    c.loss.center_weight = 0.0
    if c.optim.schedule == "multistep":  # published-recipe variants
        c.optim.milestones = (20, 40)
        common.no_warmup(c)
        common.reset(c, "optim.schedule_epoch_offset")
        c.train.num_epochs = 60
        c.model.stem_relu = True  # IAResnet keeps the stem ReLU
        c.aug.pad = 0  # train.py: resize, flip, erasing (no pad + crop)
        c.data.resize = "bicubic"
        c.aug.erasing_fill = "mean_values"  # RandomErasing's default (0.4914, 0.4822, 0.4465)
        c.loss.triplet_feature = "neck_features"  # the BNNeck feature, cosine distance
        c.loss.triplet_distance = "cosine"
    return c
