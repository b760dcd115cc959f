r"""PCB: Part-based Convolutional Baseline, and RPP: refined part pooling (Sun et al.,
"Beyond Part Models: Person Retrieval with Refined Part Pooling (and A Strong
Convolutional Baseline)", ECCV 2018).

PCB (`<dataset>`): ResNet-50 without the last down-sampling, the map cut into 6
horizontal stripes, each average pooled, dropout 0.5, reduced to 256 channels by one
shared 1x1 conv + BatchNorm + ReLU and classified by its own classifier
(`model.head='pcb'`); the loss is the sum of the 6 cross-entropies (no triplet, no
smoothing); retrieval uses the 6 pooled 2048-d stripe features, each L2-normalised,
concatenated (`eval.feature='stripe_descriptor'`). Official recipe
(syfafterzy/PCB_RPP_for_reID train_PCB.sh, PCB.py): 384x128 bilinear input, a shuffled
batch of 64 (no identity sampler), SGD momentum 0.9 with Nesterov, weight decay 5e-4,
60 epochs, lr 0.1 for the new layers and 0.01 for the backbone
(`optim.backbone_lr_mult=0.1`), x0.1 after 40 epochs; flip only. The CPU variants
(synthetic*, cuhk01) train from scratch with one learning rate and P x K batches.

RPP (`rpp-<dataset>`): the stripes are replaced by a soft assignment of every position
to the parts by a part classifier (`model.rpp=True`, `reid_jax/models/rpp.py`), from a
finished PCB run of the same dataset (`--config.model.init_from_run=<its workdir>`,
required). As the official train_RPP.sh: the whole network fine-tuned jointly from the
PCB weights, lr 0.01 for every layer for 20 epochs then 0.001 for 10. The paper's
"induced training" with a stage where only the part classifier learns is an option,
`--config.optim.rpp_classifier_only_epochs=E` (our earlier default).
Sources and deviations: `python -m reid_jax.recipes show experiments/pcb.py:market1501`.
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
    common.reset(c, "aug.erasing_max_area", "aug.erasing_aspect", "aug.erasing_tries",
                 "aug.erasing_fill")
    if published:  # syfafterzy/PCB_RPP_for_reID train_PCB.sh / PCB.py
        c.data.height = 384
        c.data.sampler = "random"  # a shuffled loader, no identity sampler
        c.model.pcb_dropout = 0.5
        c.model.pcb_shared_reduction = True
        c.model.stem_relu = True
        c.eval.feature = "stripe_descriptor"  # 6 x 2048, each stripe L2-normalised
        c.eval.metric = "euclidean"
        c.optim.name = "sgd"
        c.optim.nesterov = True
        c.optim.lr = 0.1
        c.optim.backbone_lr_mult = BACKBONE_LR_MULT
        common.no_warmup(c)
        c.optim.milestones = (40,)
        common.reset(c, "optim.schedule_epoch_offset")  # lr = 0.1 x 0.1^(epoch // 40)
        c.train.num_epochs = 60
    if variant == "rpp":
        c.model.rpp = True
        # The PCB run's stripe classifiers carry over too (same dataset, same identities).
        c.model.init_from_run_classifier = True
        if published:  # train_RPP.sh: the whole network from the PCB run, epochs 20-49
            c.optim.lr = 0.01
            c.optim.backbone_lr_mult = 1.0  # RPP.py --lr_mult 1
            c.optim.milestones = (20,)
            c.train.num_epochs = 30
        c.train.checkpoint_every_epochs = min(c.train.checkpoint_every_epochs, c.train.num_epochs)
    return c
