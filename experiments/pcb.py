r"""PCB: Part-based Convolutional Baseline (Sun et al., "Beyond Part Models: Person
Retrieval with Refined Part Pooling (and A Strong Convolutional Baseline)", ECCV 2018).

ResNet-50 without the last down-sampling, the map cut into 6 horizontal stripes, each
average pooled, reduced to 256 channels and classified by its own classifier
(`model.head='pcb'`); the loss is the sum of the 6 cross-entropies (no triplet, no
smoothing); retrieval uses the concatenated 6 x 256 stripe features.
Paper recipe (Sec. 4.2): 384x128 input, batch 64, SGD momentum 0.9, weight decay 5e-4,
60 epochs, lr 0.1 for the new layers and 0.01 for the pretrained ones, x0.1 after 40
epochs; flip only. Deviation: `reid_jax/train/optim.py` has one learning rate for all
parameters, so we use 0.02 throughout (not validated against the paper's numbers), and the
batches are P x K = 16 x 4 rather than random.
Published (rank-1 / mAP): Market-1501 92.3 / 77.4 (RPP 93.8 / 81.6), DukeMTMC 81.7 / 66.1
(RPP 83.3 / 69.2). RPP (refined part pooling) is not implemented.

Commands:
  python -m reid_jax.main --config experiments/pcb.py:synthetic --workdir runs/pcb_synth
  python -m reid_jax.main --config experiments/pcb.py:cuhk01 --workdir runs/pcb_cuhk01
  python -m reid_jax.main --config experiments/pcb.py:market1501 --workdir runs/pcb_market \
      --config.model.init_from=/path/resnet50_flax

Arguments: as experiments/bot.py.
"""

from __future__ import annotations

import ml_collections

from experiments import bot

ARGS = bot.ARGS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """PCB config for the dataset or variant named by ``arg``."""
    c = bot.get_config(arg)
    c.model.head = "pcb"
    c.loss.label_smoothing = 0.0
    c.loss.triplet_weight = 0.0
    c.loss.center_weight = 0.0
    c.loss.part_reduction = "sum"  # Sun et al.: sum of the stripe losses
    c.aug.erasing = 0.0
    c.aug.pad = 0
    if c.data.height == 256:  # the published-recipe variants
        c.data.height = 384
        c.optim.name = "sgd"
        c.optim.lr = 0.02
        c.optim.warmup_epochs = 0
        c.optim.milestones = (40,)
        c.train.num_epochs = 60
    return c
