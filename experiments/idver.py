r"""Identification + verification (Zheng, Zheng and Yang, "A Discriminatively Learned CNN
Embedding for Person Re-identification", ACM TOMM 2018, arXiv:1611.05666), with optional
LSRO (Zheng et al., ICCV 2017).

A BoT-style ResNet-50 with an identity classifier and a verification head that classifies
the squared difference (f_a - f_b)^2 of every pair of the batch as same / different
(`model.verification=True`, `reid_jax/models/verification.py`); loss = CE_id + CE_verif
(equal weights), positive and negative pairs balanced 1:1 as the paper's pair sampling.
No triplet, center loss or label smoothing. The optimiser is BoT's (Adam, 120 epochs),
not the paper's SGD schedule.
LSRO (`--config.loss.lsro=True`): images labeled -1 (GAN-generated or unlabeled) get a
uniform identity target. No builder here provides such images yet, so LSRO has nothing to
act on in the presets.
Published: ID + verification ResNet-50 Market-1501 rank-1 79.51 / mAP 59.87 (checked
against the paper's Papers-with-Code entry, "DLCE"; the same entry lists DukeMTMC
68.9 / 49.3 from later work). LSRO with DCGAN images Market-1501 84.0 / 66.1, DukeMTMC
67.7 / 47.1 (as we read Zheng et al. ICCV 2017; not verified against a second source).

Commands:
  python -m reid_jax.main --config experiments/idver.py:synthetic --workdir runs/idver_synth
  python -m reid_jax.main --config experiments/idver.py:market1501 --workdir runs/idver_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: as experiments/bot.py.
"""

from __future__ import annotations

import ml_collections

from experiments import bot

ARGS = bot.ARGS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Identification + verification config for the dataset or variant named by ``arg``."""
    c = bot.get_config(arg)
    c.model.verification = True
    c.loss.label_smoothing = 0.0
    c.loss.triplet_weight = 0.0
    c.loss.center_weight = 0.0
    c.loss.verification_weight = 1.0
    c.loss.lsro = False
    return c
