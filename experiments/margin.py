r"""Margin-based losses on the BoT recipe: CosFace, ArcFace and the pairwise circle loss.

- cosface (default): cosine classifier (`model.classifier='cosine'`) and the large-margin
  cosine loss (Wang et al., CVPR 2018), s = 30, m = 0.35 as AGW's reference code for
  re-ID (mangye16/ReID-Survey `cosine_loss.py`); triplet as BoT.
- arcface: additive angular margin (Deng et al., CVPR 2019), s = 30, m = 0.5 (the
  paper's margin; the re-ID scale of the cosface variant).
- circle: the cosface head, and the pairwise circle loss (Sun et al., CVPR 2020, eq. 6;
  m = 0.25, gamma = 128 from fast-reid `MODEL.LOSSES.CIRCLE`) instead of the triplet loss.
Center loss off (its centres would live in an unnormalised space the cosine head ignores).
No published re-ID number is reproduced by these exact recipes; fast-reid's SBS R50
(Market-1501 95.4 / 88.2, DukeMTMC 90.3 / 80.3, MSMT17 81.8 / 58.4) uses a circle-softmax
classifier with further tricks (cosine schedule, auto-augment, non-local, GeM) and is a
ceiling rather than a target.

Commands:
  python -m reid_jax.main --config experiments/margin.py:synthetic --workdir runs/cosface_synth
  python -m reid_jax.main --config experiments/margin.py:arcface-cuhk01 --workdir runs/arcface_cuhk01
  python -m reid_jax.main --config experiments/margin.py:circle-market1501 --workdir runs/circle_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: [cosface-|arcface-|circle-]<dataset>, <dataset> as experiments/bot.py.
"""

from __future__ import annotations

import ml_collections

from experiments import bot, common

VARIANTS = ("cosface", "arcface", "circle")
# ReID-Survey cosine_loss.py: s=30, m=0.35.
REID_SCALE = 30.0
COSFACE_M = 0.35
# Deng et al. 2019, Sec. 3: m = 0.5.
ARCFACE_M = 0.5


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Config for ``[variant-]dataset``."""
    arg = arg or "synthetic"
    variant, _, dataset = arg.rpartition("-")
    variant = common.parse_arg(variant or None, "cosface", VARIANTS)
    c = bot.get_config(dataset)
    c.model.classifier = "cosine"
    c.loss.center_weight = 0.0
    c.loss.margin_scale = REID_SCALE
    if variant == "arcface":
        c.loss.margin_softmax = "arcface"
        c.loss.margin_m = ARCFACE_M
    else:
        c.loss.margin_softmax = "cosface"
        c.loss.margin_m = COSFACE_M
    if variant == "circle":
        c.loss.triplet_weight = 0.0
        c.loss.circle_weight = 1.0
        c.loss.circle_margin = 0.25
        c.loss.circle_gamma = 128.0
    return c
