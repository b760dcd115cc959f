r"""AGW: the re-ID survey baseline (Ye et al., "Deep Learning for Person Re-identification:
A Survey and Outlook", TPAMI 2021).

BoT (experiments/bot.py) plus non-local blocks after the last 2 blocks of stage 2 and the
last 3 of stage 3 (`model.non_local`), GeM pooling with a learnable p (`model.pooling='gem'`)
and the weighted regularization triplet (`loss.triplet='wrt'`) instead of batch-hard
mining. As fast-reid `configs/Base-AGW.yml` (on Base-bagtricks): CE with label smoothing
0.1, WRT weight 1, no center loss, Adam 3.5e-4, 120 epochs, x0.1 at epochs 40 and 90,
warmup x0.1. fast-reid evaluates the feature *before* the BNNeck (`NECK_FEAT: before`);
pass `--config.eval.feature=features` for that, the default here is after it (BoT).
Published, fast-reid AGW R50 (rank-1 / mAP): Market-1501 95.3 / 88.2, DukeMTMC 89.0 / 79.9,
MSMT17 78.3 / 55.6.

Commands:
  python -m reid_jax.main --config experiments/agw.py:synthetic --workdir runs/agw_synth
  python -m reid_jax.main --config experiments/agw.py:cuhk01 --workdir runs/agw_cuhk01
  python -m reid_jax.main --config experiments/agw.py:market1501 --workdir runs/agw_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: as experiments/bot.py.
"""

from __future__ import annotations

import ml_collections

from experiments import bot, common

ARGS = bot.ARGS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """AGW config for the dataset or variant named by ``arg``."""
    c = bot.get_config(arg)
    c.model.non_local = True
    c.model.pooling = "gem"
    c.loss.triplet = "wrt"
    c.loss.center_weight = 0.0
    if c.optim.schedule == "multistep":  # the published recipe: fast-reid's, whose numbers
        c.optim.milestones = (40, 90)  # REFERENCE.md quotes (Base-bagtricks SOLVER.STEPS)
        c.optim.warmup_factor = 0.1  # WARMUP_FACTOR 0.1 over WARMUP_ITERS, per iteration
        c.optim.schedule_unit = "step"
        common.reset(c, "optim.schedule_epoch_offset")
        c.model.stem_relu = True  # fast-reid's ResNet keeps the stem ReLU
        c.model.gem_learnable = False  # GeneralizedMeanPooling, p = 3 fixed
        c.data.resize = "bicubic"
        # torchvision's RandomErasing (scale 0.02-0.33, log-uniform ratio, 10 tries) on
        # the 0-255 picture, value = the ImageNet mean: the mean pixel.
        c.aug.erasing_max_area = 0.33
        c.aug.erasing_aspect = "log_uniform"
        c.aug.erasing_tries = 10
        c.aug.erasing_fill = "pixel_mean"
    return c
