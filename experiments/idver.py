r"""Identification + verification (Zheng, Zheng and Yang, "A Discriminatively Learned CNN
Embedding for Person Re-identification", ACM TOMM 2018, arXiv:1611.05666), with optional
LSRO (Zheng et al., ICCV 2017).

A BoT-style ResNet-50 with an identity classifier and a verification head that classifies
the squared difference (f_a - f_b)^2 of every pair of the batch as same / different
(`model.verification=True`, `reid_jax/models/verification.py`); loss = CE_id + CE_verif
(equal weights), positive and negative pairs balanced 1:1 as the paper's pair sampling.
No triplet, center loss or label smoothing. The optimiser is BoT's (Adam, 120 epochs),
not the paper's SGD schedule.
LSRO (`lsro-<dataset>`): extra pictures enter every batch unlabeled (`data.unlabeled`,
`data.unlabeled_per_batch` of them after the P x K identities) and get a uniform identity
target (`loss.lsro`); the verification loss forms no pair with them. The paper adds
DCGAN images to an identification-only ResNet-50; here LSRO is added to this file's
identification + verification model, so `lsro-<dataset>` compares with `<dataset>`.
With no GAN at hand the extra pictures default to the rendered `synthetic_persons`
identities (generated pictures too, from a renderer; the synthetic presets take the
`multidomain` renders instead, other identities in other styles); point `data.unlabeled` at your own
generated set built with `custom_folder`. 16 per batch of 64 is our choice: the paper
mixes 24,000 generated with Market's 12,936 real pictures at random.
Published: ID + verification ResNet-50 Market-1501 rank-1 79.51 / mAP 59.87 (checked
against the paper's Papers-with-Code entry, "DLCE"; the same entry lists DukeMTMC
68.9 / 49.3 from later work). LSRO with DCGAN images Market-1501 84.0 / 66.1, DukeMTMC
67.7 / 47.1 (as we read Zheng et al. ICCV 2017; not verified against a second source).

Commands:
  python -m reid_jax.main --config experiments/idver.py:synthetic --workdir runs/idver_synth
  python -m reid_jax.main --config experiments/idver.py:lsro-cuhk01 --workdir runs/lsro_cuhk01
  python -m reid_jax.main --config experiments/idver.py:market1501 --workdir runs/idver_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: [lsro-]<dataset>, <dataset> as experiments/bot.py.
"""

from __future__ import annotations

import ml_collections

from experiments import bot, common

ARGS = bot.ARGS
VARIANTS = ("idver", "lsro")
# The generated pictures LSRO uses when no other set is named (see the docstring).
LSRO_EXTRA = "synthetic_persons/default:train"
# For the synthetic runs themselves: other rendered identities, in other rendering domains.
LSRO_EXTRA_SYNTHETIC = ",".join(f"synthetic_persons/multidomain:train_d{d}" for d in range(4))
LSRO_PER_BATCH = 16


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Identification + verification config for ``[lsro-]dataset``."""
    variant, _, dataset = (arg or "synthetic").rpartition("-")
    variant = common.parse_arg(variant or None, "idver", VARIANTS)
    c = bot.get_config(dataset)
    c.model.verification = True
    c.loss.label_smoothing = 0.0
    c.loss.triplet_weight = 0.0
    c.loss.center_weight = 0.0
    c.loss.verification_weight = 1.0
    c.loss.lsro = variant == "lsro"
    if variant == "lsro":
        c.data.unlabeled = LSRO_EXTRA_SYNTHETIC if dataset.startswith("synthetic") else LSRO_EXTRA
        c.data.unlabeled_per_batch = LSRO_PER_BATCH
    return c
