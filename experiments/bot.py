r"""BoT: the strong supervised baseline (Luo et al., "Bag of Tricks and a Strong Baseline
for Deep Person Re-identification", CVPRW 2019).

Published recipe (the default for real datasets here): ResNet-50 with ImageNet weights,
last stride 1, BNNeck, 256x128 input, batch 64 = 16 ids x 4 images, Adam lr 3.5e-4 with
linear warmup from 3.5e-5 over 10 epochs, x0.1 at epochs 40 and 70, 120 epochs, weight
decay 5e-4, label smoothing 0.1, triplet margin 0.3, center loss 5e-4 (centre lr 0.5),
random erasing 0.5, pad 10 + crop, flip 0.5.
Published: Market-1501 rank-1 94.5 / mAP 85.9, DukeMTMC 86.4 / 76.4 (one GPU).
ImageNet weights cannot be downloaded here: import them with
`python -m reid_jax.tools.import_torch` and set `--config.model.init_from`.

Commands:
  # demo on the built-in synthetic data (CPU, a few minutes):
  python -m reid_jax.main --config experiments/bot.py:synthetic --workdir runs/bot_synth
  # real CUHK01, 486-id test split 0, from scratch on CPU (about 8 minutes on 2 cores):
  python -m reid_jax.data.build cuhk01/p486_s0 --manual_dir ../shared/data/cuhk01
  python -m reid_jax.main --config experiments/bot.py:cuhk01 --workdir runs/bot_cuhk01
  # published recipe on Market-1501 (GPU):
  python -m reid_jax.main --config experiments/bot.py:market1501 --workdir runs/bot_market \
      --config.model.init_from=/path/resnet50_flax
  CUHK01 reference point: IDLA (Ahmed et al., CVPR 2015; experiments/idla.py) reaches
  single-shot rank-1 47.5 on the 486-id protocol, pre-trained on CUHK03 then fine-tuned.

Source pre-training for domain adaptation ('SOURCE->TARGET'; quote it in a shell):
supervised on SOURCE, evaluated on TARGET (the final evaluation is the direct transfer),
with a target batch forwarded after every step for BatchNorm only (``data.bn_target``),
as MMT's source pre-training; on a published dataset, MMT's source recipe
(``python -m reid_jax.recipes show 'experiments/bot.py:dukemtmc->market1501'``).
  # CPU source model: every synthetic rendering domain (700 identities), about 13 min
  python -m reid_jax.main --config 'experiments/bot.py:synthetic_all->cuhk01' \
      --workdir runs/src_s0
  # direct transfer again, later: --mode=eval on that workdir; supervised CUHK01 from it:
  python -m reid_jax.main --config experiments/bot.py:cuhk01 --workdir runs/c01_from_src \
      --config.model.init_from_run=runs/src_s0

Arguments: synthetic, synthetic_all, synthetic_multidomain, synthetic_tiny and
synthetic_multidomain_tiny (tests), cuhk01 (CPU-sized), cuhk01_full (published recipe),
and, with the published recipe, market1501, dukemtmc, msmt17, cuhk03_labeled, cuhk03_detected,
viper, grid, prid2011, ilids, cuhk01_p100 (build each first; see data_builders/README.md),
and SOURCE->TARGET (SOURCE one of these; TARGET an experiments/common.py DATASETS preset
or any built 'builder/config' with train/query/gallery splits, e.g. custom_folder/mine).
"""

from __future__ import annotations

import ml_collections

from experiments import common

REAL = ("market1501", "dukemtmc", "msmt17", "cuhk03_labeled", "cuhk03_detected", "viper", "grid",
        "prid2011", "ilids", "cuhk01_p100")
ARGS = ("synthetic", "synthetic_all", "synthetic_multidomain", "synthetic_tiny",
        "synthetic_multidomain_tiny", "cuhk01", "cuhk01_full", *REAL)
TINY = ("synthetic_tiny", "synthetic_multidomain_tiny")
SYNTHETIC = ("synthetic", "synthetic_all", "synthetic_multidomain")


def _cpu_small(c: ml_collections.ConfigDict) -> None:
    """A ResNet-18 at half width and 128x64 input: trains in minutes on 2 CPU cores."""
    c.model.backbone = "resnet18"
    c.model.width = 32
    c.data.height, c.data.width = 128, 64
    c.aug.pad = 5
    c.loss.center_weight = 0.0
    c.eval.batch_size = 256
    common.cpu_erasing(c)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """BoT config for the dataset or variant named by ``arg``."""
    # 'SOURCE->TARGET': supervised source pre-training, evaluated on the target.
    source, target = common.parse_transfer(arg, "synthetic", ARGS, sources=ARGS,
                                           targets=tuple(common.DATASETS),
                                           any_dataset_target=True)
    arg = source or target
    c = common.base_config("supervised")
    if arg in (*SYNTHETIC, *TINY):
        common.set_dataset(c, arg)
        _cpu_small(c)
        c.optim.lr = 1e-3
        c.optim.warmup_epochs = 1
        c.optim.schedule = "cosine"
        c.train.num_epochs = 10
        c.train.checkpoint_every_epochs = 5
    if arg in TINY:
        c.model.stage_sizes = (1, 1, 1, 1)
        c.model.width = 8
        c.data.height, c.data.width = 32, 16
        c.aug.pad = 2
        c.data.p, c.data.k = 4, 2
        c.data.num_threads = 1
        c.train.num_epochs = 2
        c.train.checkpoint_every_epochs = 1
        c.train.log_every_steps = 1
        c.train.progress = False
        c.eval.batch_size = 16
    elif arg == "cuhk01":
        common.set_dataset(c, "cuhk01")
        _cpu_small(c)
        c.data.k = 4
        c.optim.lr = 1e-3
        c.optim.warmup_epochs = 5
        c.optim.schedule = "cosine"
        c.train.num_epochs = 40
        c.train.checkpoint_every_epochs = 10
    elif arg == "cuhk01_full":
        common.set_dataset(c, "cuhk01")
        published(c)
    elif arg in REAL:
        common.set_dataset(c, arg)
        published(c)
    if source is not None:
        source_pretraining(c, arg, target)
    return c


def source_pretraining(c: ml_collections.ConfigDict, source: str, target: str) -> None:
    """Supervised training on ``source`` evaluated on ``target``: the source model of the
    domain-adaptation configs, and its final evaluation is the direct transfer."""
    common.evaluate_on(c, target)
    t = common.target_splits(target)
    # MMT's PreTrainer forwards a random target batch (as large as the source batch,
    # source_pretrain.py:105-107) after every source batch, only for BatchNorm.
    c.data.bn_target = f"{t['dataset']}:{t['train']}"
    c.data.bn_target_per_batch = c.data.p * c.data.k
    if source in REAL:  # MMT's source recipe (yxgeee/MMT scripts/pretrain.sh:14-16)
        c.loss.center_weight = 0.0  # MMT trains CE (eps 0.1) + triplet only (trainers.py:77-86)
        common.reset(c, "loss.center_lr")
        c.loss.soft_margin = True  # SoftTripletLoss(margin=0.0) = softplus(d_ap - d_an)
        common.reset(c, "loss.triplet_margin")
        c.aug.erasing = 0.0  # source_pretrain.py:39-46: flip, pad 10, crop; no erasing
        common.reset(c, "aug.erasing_max_area", "aug.erasing_aspect", "aug.erasing_tries",
                     "aug.erasing_fill")
        c.train.num_epochs = 80  # --epochs 80 --iters 100
        c.data.steps_per_epoch = 100
        c.optim.milestones = (40, 70)  # source_pretrain.py:138,145 (epoch-based)
    elif source == "synthetic_all":
        c.train.num_epochs = 12
        c.train.checkpoint_every_epochs = 4


def published(c: ml_collections.ConfigDict) -> None:
    """The official recipe's values that differ from the schema defaults
    (michuanhaohao/reid-strong-baseline configs/softmax_triplet_with_center.yml)."""
    c.optim.warmup_factor = 0.01  # SOLVER.WARMUP_FACTOR
    c.optim.schedule_unit = "epoch"  # scheduler.step() at Events.EPOCH_STARTED
    c.optim.schedule_epoch_offset = 1  # ...so the first epoch trains at last_epoch = 1
    c.model.stem_relu = False  # modeling/backbones/resnet.py: the stem's relu commented out
