r"""PCB: Part-based Convolutional Baseline, and RPP: refined part pooling (Sun et al.,
"Beyond Part Models: Person Retrieval with Refined Part Pooling (and A Strong
Convolutional Baseline)", ECCV 2018).

PCB (`<dataset>`): ResNet-50 without the last down-sampling, the map cut into 6
horizontal stripes, each average pooled, reduced to 256 channels and classified by its
own classifier (`model.head='pcb'`); the loss is the sum of the 6 cross-entropies (no
triplet, no smoothing); retrieval uses the concatenated 6 x 256 stripe features.
Paper recipe (Sec. 4.2): 384x128 input, batch 64, SGD momentum 0.9, weight decay 5e-4,
60 epochs, lr 0.1 for the new layers and 0.01 for the pretrained ones
(`optim.backbone_lr_mult=0.1`; the 10x factor as in layumi/Person_reID_baseline_pytorch
and syfafterzy/PCB_RPP_for_reID), x0.1 after 40 epochs; flip only. Deviation: batches
are P x K = 16 x 4 rather than random. The CPU variants (synthetic*, cuhk01) train from
scratch and keep one learning rate.

RPP (`rpp-<dataset>`): the stripes are replaced by a soft assignment of every position
to the parts by a part classifier (`model.rpp=True`, `reid_jax/models/rpp.py`), trained
as the paper's induced training (Sec. 3.3) from a finished PCB run of the same dataset
(`--config.model.init_from_run=<its workdir>`, required): first only the part classifier
learns, everything else held (`optim.rpp_classifier_only_epochs`), then everything is
fine-tuned. The rpp-<real dataset> schedule is our choice, not validated against the
paper's numbers: 30 epochs, the first 10 for the part classifier alone; lr 0.01 for the
new layers and 0.001 for the backbone, x0.1 after epoch 20.
Published (rank-1 / mAP): PCB Market-1501 92.3 / 77.4, DukeMTMC 81.7 / 66.1; RPP
Market-1501 93.8 / 81.6, DukeMTMC 83.3 / 69.2.

Commands:
  python -m reid_jax.main --config experiments/pcb.py:synthetic --workdir runs/pcb_synth
  python -m reid_jax.main --config experiments/pcb.py:rpp-synthetic --workdir runs/rpp_synth \
      --config.model.init_from_run=runs/pcb_synth
  python -m reid_jax.main --config experiments/pcb.py:cuhk01 --workdir runs/pcb_cuhk01
  python -m reid_jax.main --config experiments/pcb.py:market1501 --workdir runs/pcb_market \
      --config.model.init_from=/path/resnet50_flax
  python -m reid_jax.main --config experiments/pcb.py:rpp-market1501 --workdir runs/rpp_market \
      --config.model.init_from_run=runs/pcb_market

Arguments: [rpp-]<dataset>, <dataset> as experiments/bot.py.
"""

from __future__ import annotations

import ml_collections

from experiments import bot, common

ARGS = bot.ARGS
VARIANTS = ("pcb", "rpp")
# Sun et al. / the reference implementations: pretrained layers at 1/10 of the new ones.
BACKBONE_LR_MULT = 0.1


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """PCB (``dataset``) or RPP (``rpp-dataset``) config."""
    arg = arg or "synthetic"
    variant, _, dataset = arg.rpartition("-")
    variant = common.parse_arg(variant or None, "pcb", VARIANTS)
    c = bot.get_config(dataset)
    published = c.data.height == 256  # the real-dataset variants with the published recipe
    c.model.head = "pcb"
    c.model.rpp = False
    c.loss.label_smoothing = 0.0
    c.loss.triplet_weight = 0.0
    c.loss.center_weight = 0.0
    c.loss.part_reduction = "sum"  # Sun et al.: sum of the stripe losses
    c.aug.erasing = 0.0
    c.aug.pad = 0
    c.optim.backbone_lr_mult = 1.0
    c.optim.rpp_classifier_only_epochs = 0
    if published:
        c.data.height = 384
        c.optim.name = "sgd"
        c.optim.lr = 0.1
        c.optim.backbone_lr_mult = BACKBONE_LR_MULT
        c.optim.warmup_epochs = 0
        c.optim.milestones = (40,)
        c.train.num_epochs = 60
    if variant == "rpp":
        c.model.rpp = True
        # The PCB run's stripe classifiers carry over too (same dataset, same identities).
        c.model.init_from_run_classifier = True
        if published:
            c.optim.lr = 0.01
            c.optim.rpp_classifier_only_epochs = 10
            c.optim.milestones = (20,)
            c.train.num_epochs = 30
        else:  # CPU variants: half the epochs for the part classifier alone
            c.optim.rpp_classifier_only_epochs = c.train.num_epochs // 2
        c.train.checkpoint_every_epochs = min(c.train.checkpoint_every_epochs, c.train.num_epochs)
    return c
