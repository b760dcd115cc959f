r"""Gated siamese CNN: Varior, Haloi and Wang, "Gated Siamese Convolutional Neural Network
Architecture for Human Re-Identification", ECCV 2016 (no official code was released).

A siamese CNN whose mid-level maps pass through matching gates that compare the two
pictures row by row and boost the features that agree (``reid_jax/models/pairwise.py``
says what of the architecture we could verify and what we chose), trained with the
contrastive loss on same / different pairs (``reid_jax/train/pairwise.py``).
``--config.model.gate_layers='()'`` is the siamese baseline (S-CNN) the paper compares
with: the same network without gates, a plain embedding compared by Euclidean distance.

What we could verify of the recipe: 128 x 64 input, the contrastive loss on the Euclidean
distance of L2-normalised features, test by that distance. The paper's optimiser,
learning rate, batch, margin, pair ratio and iterations were not available to us; ours:
Adam lr 1e-3 with a cosine decay, P = 25 x K = 2 (50 positive + 100 negative pairs),
margin 1 (on unit features, distances lie in [0, 2]), flips and 5 % translations.
Published (single query; paper's tables as quoted by later work, not read in the paper
itself): gated S-CNN Market-1501 rank-1 65.88 / mAP 39.55 (multi-query 76.04 / 48.45),
CUHK03 rank-1 61.8 (detected? the quoting table's column), VIPeR rank-1 37.8; the S-CNN
baseline Market-1501 rank-1 62.32. CUHK01 is not among the paper's datasets.

Commands:
  # real CUHK01, 486-id split 0, from scratch on CPU (~25 min on 2 cores), and the baseline:
  python -m reid_jax.main --config experiments/gated_scnn.py:cuhk01 --workdir runs/gscnn_c01
  python -m reid_jax.main --config experiments/gated_scnn.py:cuhk01 --workdir runs/scnn_c01 \
      --config.model.gate_layers='()'
  # Market-1501 (GPU):
  python -m reid_jax.main --config experiments/gated_scnn.py:market1501 --workdir runs/gscnn_m

Arguments: synthetic, synthetic_tiny (tests), cuhk01 (CPU-sized), market1501,
cuhk03_labeled, cuhk03_detected, viper.
"""

from __future__ import annotations

import ml_collections

from experiments import common

ARGS = ("synthetic", "synthetic_tiny", "cuhk01", "market1501", "cuhk03_labeled",
        "cuhk03_detected", "viper")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Gated S-CNN config for ``arg`` (see the module docstring)."""
    arg = common.parse_arg(arg, "synthetic", ARGS)
    c = common.base_config("pairwise")
    c.model.name = "gated_scnn"
    c.pairs.loss = "contrastive"
    c.pairs.margin = 1.0
    c.pairs.negatives_per_positive = 2
    c.data.height, c.data.width = 128, 64
    c.data.p, c.data.k = 25, 2
    c.aug.pad = 0
    c.aug.erasing = 0.0
    common.reset(c, "aug.erasing_max_area", "aug.erasing_aspect", "aug.erasing_tries",
                 "aug.erasing_fill")
    c.aug.translate = 0.05
    c.optim.lr = 1e-3
    c.optim.schedule = "cosine"
    common.reset(c, "optim.milestones", "optim.gamma")
    common.no_warmup(c)
    c.eval.batch_size = 128
    if arg in ("synthetic", "synthetic_tiny"):
        common.set_dataset(c, arg)
        c.train.num_epochs = 40
        c.train.checkpoint_every_epochs = 10
    if arg == "synthetic_tiny":
        c.data.height, c.data.width = 32, 16
        c.data.p, c.data.k = 4, 2
        c.data.num_threads = 1
        c.train.num_epochs = 2
        c.train.checkpoint_every_epochs = 1
        c.train.log_every_steps = 1
        c.train.progress = False
        c.eval.batch_size = 16
        c.eval.pair_block = 64
    elif arg == "cuhk01":
        common.set_dataset(c, "cuhk01")
        c.data.steps_per_epoch = 100
        c.train.num_epochs = 20
        c.train.checkpoint_every_epochs = 5
        c.eval.evaluators = ("single_shot",)
        c.eval.single_shot_draws = 2
        c.eval.before_training = False
    elif arg != "synthetic":
        common.set_dataset(c, arg)
        c.data.steps_per_epoch = 500
        c.train.num_epochs = 100
    return c
