r"""M3L (Zhao et al., "Learning to Generalize Unseen Domains via Memory-based Multi-Source
Meta-Learning for Person Re-Identification", CVPR 2021). Trainer: reid_jax/train/m3l.py.

Published protocol: leave one out over Market-1501, DukeMTMC-reID, CUHK03-NP (detected)
and MSMT17: train on three (training splits), test on the fourth. Published mAP / rank-1
with ResNet-50 (REFERENCE.md): -> Market 48.1 / 74.5, -> Duke 50.5 / 69.4,
-> CUHK03-NP 29.9 / 30.7, -> MSMT17 12.9 / 33.0; with IBN-Net50 (norm='ibn_a'):
50.2 / 75.9, 51.1 / 69.2, 32.1 / 33.1, 14.7 / 36.9.
Recipe (paper and official code HeliosZhao/M3L): ImageNet ResNet-50, 256x128, per source
domain 16 ids x 4 images (the official per-domain loaders; P x K below is per domain),
Adam lr 3.5e-4 with weight decay 5e-4, 60 epochs of 200 iterations, linear warmup over
10 epochs from 0.01 x lr, x0.1 at epochs 30 and 50 (official main.py), no random
erasing, memories initialised from class means of the initial model's features, tau 0.05 and
momentum 0.2, triplet margin 0.3, MetaBN lam ~ Beta(1, 1), second-order inner step at the
current lr with the official one-step Adam (`update_params(solver='adam')`).

Differences: MetaBN mixes with the standard deviation (the official code passes the
variance, REFERENCE.md); the running BatchNorm statistics are averaged over the meta-train
domains' forwards; ImageNet weights must be imported (--config.model.init_from).

Commands:
  # synthetic leave-one-domain-out (train domains 0-2, test domain 3), CPU, minutes:
  python -m reid_jax.main --config experiments/m3l.py:synthetic --workdir runs/m3l_synth
  # synthetic-to-real: the four synthetic domains -> CUHK01 (486-id split 0):
  python -m reid_jax.main --config experiments/m3l.py:s2r --workdir runs/m3l_s2r
  # published protocol, e.g. target Market-1501 (GPU):
  python -m reid_jax.main --config experiments/m3l.py:market1501 --workdir runs/m3l_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: synthetic, synthetic_tiny (tests), s2r, market1501, dukemtmc, cuhk03, msmt17
(the target; the other three are the sources).
"""

from __future__ import annotations

import ml_collections

from experiments import common
from experiments import metabin as metabin_config

# Four domains of the published protocol: (builder, query split, gallery split).
DOMAINS = {
    "market1501": "market1501/standard",
    "dukemtmc": "dukemtmc_reid/standard",
    "cuhk03": "cuhk03/np_detected",
    "msmt17": "msmt17/v1",
}
ARGS = ("synthetic", "synthetic_tiny", "s2r", *DOMAINS)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """M3L config for the target or variant named by ``arg``."""
    arg = common.parse_arg(arg, "synthetic", ARGS)
    c = common.base_config("m3l")  # config.meta at its declared defaults
    if arg.startswith("synthetic"):
        metabin_config.synthetic_dg(c)
    elif arg == "s2r":  # four synthetic domains -> CUHK01 486-id split 0
        metabin_config.synthetic_to_real(c)
    if arg in ("synthetic", "s2r"):
        # CPU budget: the second-order step costs 5.2x a plain step here, first-order 1.2x
        # (benchmarks/meta_step.py); --config.meta.first_order=False for the paper's.
        c.meta.first_order = True
    if arg == "synthetic_tiny":
        c.data.dataset = "synthetic_persons/multidomain_tiny"
        c.model.stage_sizes = (1, 1, 1, 1)
        c.model.width = 8
        c.data.height, c.data.width = 32, 16
        c.aug.pad = 2
        c.data.p, c.data.k = 2, 2
        c.data.num_threads = 1
        c.data.steps_per_epoch = 1
        c.train.num_epochs = 2
        c.train.checkpoint_every_epochs = 1
        c.train.log_every_steps = 1
        c.train.progress = False
        c.eval.batch_size = 16
    elif arg in DOMAINS:
        sources = [d for d in DOMAINS if d != arg]
        c.data.dataset = DOMAINS[arg]
        c.data.train = ",".join(f"{DOMAINS[s]}:train" for s in sources)
        c.data.query, c.data.gallery = "query", "gallery"
        c.data.p, c.data.k = 16, 4
        c.optim.name = "adam"
        c.optim.lr = 3.5e-4
        c.optim.weight_decay = 5e-4
        c.optim.warmup_epochs = 10
        c.optim.warmup_factor = 0.01
        c.optim.milestones = (30, 50)
        c.optim.schedule_unit = "epoch"  # lr_scheduler.step() once per epoch (main.py)
        c.train.num_epochs = 60
        c.data.steps_per_epoch = 200  # official --iters 200
        c.data.resize = "bicubic"
        c.model.stem_relu = False  # resMeta.py: conv1 -> bn1 -> maxpool
        c.aug.erasing = 0.0  # official transforms: flip, pad 10, crop (no erasing)
        common.reset(c, "aug.erasing_max_area", "aug.erasing_aspect", "aug.erasing_tries",
                     "aug.erasing_fill")
        c.eval.before_training = False
    return c
