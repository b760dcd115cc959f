r"""IDLA: Ahmed, Jones and Marks, "An Improved Deep Learning Architecture for Person
Re-identification", CVPR 2015: a pair network (tied convolutions, cross-input
neighbourhood differences, patch summary, across-patch features, FC 500, 2-way softmax;
``reid_jax/models/pairwise.py``) trained on same / different pairs
(``reid_jax/train/pairwise.py``).

Published recipe (paper Sec. 6-7; no official code was released): 60 x 160 input,
translations up to 5% of the height and width (Sec. 6.1; flips only for VIPeR), SGD lr
0.01, momentum 0.9, weight decay 5e-4, Caffe's "inv" policy lr (1 + 1e-4 t)^-0.75,
mini-batches of 150 pairs with negatives down-sampled to twice the positives (here
P = 25 identities x K = 2 pictures: 50 positives + 100 negatives), 210,000 iterations on
CUHK03; then hard negatives (Sec. 6.2): the top layer alone retrained on the hardest
negatives, 1:1 with the positives (see the trainer's docstring for how we mine them).
Fine-tuning on a small set from a large one restarts at lr 0.001 (Sec. 6.3).
Published rank-1 (single-shot): CUHK03 labeled 54.74, detected 44.96 (Fig. 5);
CUHK01 100 test ids 65.00, 486 test ids 47.53 (Fig. 6); VIPeR 34.81.
How each was obtained (Sec. 7): CUHK03 trained on its 1,160 training ids. CUHK01-486:
pre-trained on CUHK03, fine-tuned on the 485 training ids for 210K iterations (40.5),
then hard negatives for another 210K iterations (47.5); the CUHK03 model alone gave
about 6. CUHK01-100: trained on the 871 other ids (no pre-training is mentioned).
VIPeR: CUHK03 + CUHK01, then fine-tuned on its 316 ids.

Our CUHK01 protocols: query camera A, gallery camera B, both pictures of each test
identity; the primary figure is the single-gallery-shot CMC (``cuhk03_classic``: one
random gallery picture per identity, 10 draws, every query picture), the paper's
"single-shot"; mAP on the whole gallery. The paper used 5 random splits, ours is split 0.

Commands:
  # real CUHK01, 486-id split 0, from scratch on CPU (~45 min on 2 cores, single-shot eval):
  python -m reid_jax.data.build cuhk01/p486_s0 --manual_dir ../shared/data/cuhk01
  python -m reid_jax.main --config experiments/idla.py:cuhk01 --workdir runs/idla_cuhk01
  # the paper's CUHK01-486 protocol with synthetic persons in place of CUHK03:
  python -m reid_jax.main --config experiments/idla.py:synthetic --workdir runs/idla_syn
  python -m reid_jax.main --config experiments/idla.py:cuhk01_finetune \
      --workdir runs/idla_cuhk01_ft --config.model.init_from_run=runs/idla_syn
  # published recipe on CUHK03 (GPU):
  python -m reid_jax.main --config experiments/idla.py:cuhk03_labeled --workdir runs/idla_c03

Arguments: synthetic, synthetic_tiny (tests), cuhk01 (CPU-sized, from scratch),
cuhk01_finetune (from model.init_from_run), cuhk01_p100, cuhk03_labeled, cuhk03_detected.
"""

from __future__ import annotations

import ml_collections

from experiments import common

ARGS = ("synthetic", "synthetic_tiny", "cuhk01", "cuhk01_finetune", "cuhk01_p100",
        "cuhk03_labeled", "cuhk03_detected")
PAPER_ITERATIONS = 210_000  # Sec. 7.1 (CUHK03) and 7.2 (each CUHK01 phase)
STEPS_PER_EPOCH = 1_000  # published configs: epochs of 1,000 iterations


def recipe(c: ml_collections.ConfigDict) -> None:
    """The paper's network, input, augmentation, pair sampling and optimiser."""
    c.model.name = "idla"
    c.data.height, c.data.width = 160, 60
    c.data.p, c.data.k = 25, 2  # 50 pictures -> 50 positive + 100 negative pairs = 150
    c.pairs.negatives_per_positive = 2
    c.aug.flip = 0.0
    c.aug.pad = 0
    c.aug.erasing = 0.0
    common.reset(c, "aug.erasing_max_area", "aug.erasing_aspect", "aug.erasing_tries",
                 "aug.erasing_fill")
    c.aug.translate = 0.05
    c.optim.name = "sgd"
    c.optim.lr = 0.01
    c.optim.momentum = 0.9
    c.optim.weight_decay = 5e-4
    c.optim.schedule = "inv"
    common.reset(c, "optim.milestones", "optim.gamma")
    c.optim.inv_gamma = 1e-4
    c.optim.inv_power = 0.75
    common.no_warmup(c)
    c.eval.evaluators = ("cuhk03_classic",)  # single-gallery-shot CMC, full-gallery mAP
    c.eval.batch_size = 128


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """IDLA config for ``arg`` (see the module docstring)."""
    arg = common.parse_arg(arg, "synthetic", ARGS)
    c = common.base_config("pairwise")
    recipe(c)
    if arg in ("synthetic", "synthetic_tiny"):
        common.set_dataset(c, arg)
        c.eval.evaluators = ("retrieval",)
        c.train.num_epochs = 40
        c.pairs.hard_negative_epochs = 5
        c.train.checkpoint_every_epochs = 10
    if arg == "synthetic_tiny":
        c.data.height, c.data.width = 40, 24  # 7 x 3 maps: the across-patch 3 x 3 still fits
        c.data.p, c.data.k = 4, 2
        c.pairs.mining_candidates = 4
        c.data.num_threads = 1
        c.train.num_epochs = 2
        c.pairs.hard_negative_epochs = 1
        c.train.checkpoint_every_epochs = 1
        c.train.log_every_steps = 1
        c.train.progress = False
        c.eval.batch_size = 16
        c.eval.pair_block = 64
    elif arg in ("cuhk01", "cuhk01_finetune"):
        common.set_dataset(c, "cuhk01")
        # CPU-sized: 2,000 steps of 150 pairs, the last 300 on hard negatives (the paper:
        # 210,000 + 210,000 on GPU).
        c.data.steps_per_epoch = 100
        c.train.num_epochs = 20
        c.pairs.hard_negative_epochs = 3
        c.train.checkpoint_every_epochs = 4
        c.eval.evaluators = ("single_shot",)
        c.eval.single_shot_draws = 1
        c.eval.before_training = False  # 944k pair scores: minutes on CPU
        if arg == "cuhk01_finetune":
            c.optim.lr = 0.001  # Sec. 6.3: fine-tuning restarts at 0.001
    elif arg in ("cuhk01_p100", "cuhk03_labeled", "cuhk03_detected"):
        common.set_dataset(c, arg)
        c.data.steps_per_epoch = STEPS_PER_EPOCH
        epochs = PAPER_ITERATIONS // STEPS_PER_EPOCH
        # 210K iterations of random negatives, then as many of hard negatives (the
        # paper's CUHK01-486 schedule; its CUHK03 hard phase length is not stated).
        c.train.num_epochs = 2 * epochs
        c.pairs.hard_negative_epochs = epochs
        c.train.checkpoint_every_epochs = 10
    return c
