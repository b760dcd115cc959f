r"""Cluster contrast: unsupervised re-ID with a cluster memory (Dai et al., "Cluster
Contrast for Unsupervised Person Re-Identification", ACCV 2022).

Published recipe (official alibaba/cluster-contrast-reid README, Market-1501 command
``-b 256 -a resnet50 -d market1501 --iters 200 --momentum 0.1 --eps 0.6
--num-instances 16``): ImageNet ResNet-50, last stride 1, GeM pooling (the script's
``--pooling-type gem`` default), BNNeck feature (bias frozen), 256x128 input, batch
256 = 16 pseudo-ids x 16 images, Adam lr 3.5e-4, weight decay 5e-4, x0.1 every 20
epochs, 50 epochs of 200 iterations (400 for MSMT17), flip + pad 10 + crop + random
erasing 0.5; every epoch Jaccard distance (k1 30, k2 6) + DBSCAN (eps 0.6, min_samples
4); memory momentum 0.1, temperature 0.05. Published (4 GPUs, labels unused):
Market-1501 rank-1 92.3 / mAP 82.1, DukeMTMC 84.9 / 72.6, MSMT17 56.0 / 27.6.
The reference trains with nn.DataParallel on 4 GPUs, so BatchNorm saw 64 images per
replica (users report 59.1 mAP on 1 GPU vs 82.6 on 4 on Market); the real-dataset
configs here set ``train.bn_group_size = 64`` to normalise over the same groups.

Commands:
  # demo on the built-in synthetic data (CPU, labels hidden; 12 rounds of 40 steps,
  # 39 min on a heavily shared 2-core CPU): mAP 0.0073 untrained -> 0.051 trained
  python -m reid_jax.main --config experiments/cluster_contrast.py:synthetic \
      --workdir runs/cc_synth
  # real CUHK01 (486-id split 0), from scratch, CPU-sized network:
  python -m reid_jax.data.build cuhk01/p486_s0 --manual_dir ../shared/data/cuhk01
  python -m reid_jax.main --config experiments/cluster_contrast.py:cuhk01 \
      --workdir runs/cc_cuhk01
  # published recipe on Market-1501 (GPU; ImageNet weights imported first):
  python -m reid_jax.main --config experiments/cluster_contrast.py:market1501 \
      --workdir runs/cc_market --config.model.init_from=/path/resnet50_flax
  # hard-instance memory update: add --config.contrast.use_hard=True

Domain adaptation ('SOURCE->TARGET'; quote it in a shell, '>' redirects): the
target's recipe started from a supervised source run (``bot.py:SOURCE->TARGET``) instead of
ImageNet weights; the run refuses to start without ``model.init_from_run``. The official
repository publishes no UDA setting (README and run_code.sh: unsupervised rows only; its
models/dsbn.py is left from SpCL). The nearest published memory-based UDA figures are
SpCL's (yxgeee/SpCL first README table, ResNet-50, mAP / rank-1: DukeMTMC -> Market-1501
76.7 / 90.3, Market-1501 -> DukeMTMC 68.8 / 82.9), trained jointly on source and target
rather than from a source model. On CPU, synthetic -> CUHK01 (README, domain adaptation):
  python -m reid_jax.main --config 'experiments/bot.py:synthetic_all->cuhk01' \
      --workdir runs/src_s0
  python -m reid_jax.main --config 'experiments/cluster_contrast.py:synthetic_all->cuhk01' \
      --workdir runs/cc_uda_s0 --config.model.init_from_run=runs/src_s0

Arguments: synthetic, synthetic_tiny (tests), cuhk01, market1501, dukemtmc, msmt17, and
SOURCE->TARGET for domain adaptation (a SOURCE from experiments/common.py DATASETS).
"""

from __future__ import annotations

import ml_collections

from experiments import common

ARGS = ("synthetic", "synthetic_tiny", "cuhk01", "market1501", "dukemtmc", "msmt17")
# The CPU-sized targets of 'SOURCE->TARGET' (the rest take the published recipe).
CPU_TARGETS = ("synthetic", "cuhk01")


def unsupervised_base(trainer: str) -> ml_collections.ConfigDict:
    """Keys every clustering trainer reads, with the cluster contrast defaults."""
    c = common.base_config(trainer)
    c.data.p, c.data.k = 16, 16
    c.data.steps_per_epoch = 200  # iterations per epoch (official --iters)
    c.optim.name = "adam"
    c.optim.lr = 3.5e-4
    c.optim.weight_decay = 5e-4
    c.optim.schedule = "multistep"
    c.optim.milestones = (20, 40)  # StepLR(step_size=20, gamma=0.1)
    c.optim.gamma = 0.1
    c.optim.schedule_unit = "epoch"  # lr_scheduler.step() once per epoch
    common.no_warmup(c)
    c.train.num_epochs = 50
    c.train.checkpoint_every_epochs = 5
    c.eval.every_epochs = 10  # official --eval-step 10
    # config.cluster keeps its declared defaults (reid_jax/train/rounds.py): Jaccard
    # k1 30 / k2 6 + DBSCAN eps 0.6, min_samples 4, as the official command.
    return c


def cpu_small(c: ml_collections.ConfigDict) -> None:
    """A ResNet-18 at half width and 128x64 input: a round + epoch in a minute on CPU."""
    c.model.backbone = "resnet18"
    c.model.width = 32
    c.model.pooling = "avg"
    c.data.height, c.data.width = 128, 64
    c.aug.pad = 5
    c.eval.batch_size = 256
    common.cpu_erasing(c)


def tiny(c: ml_collections.ConfigDict) -> None:
    """One-block width-8 ResNet on 32x16 images, tiny clustering: for tests."""
    common.set_dataset(c, "synthetic_tiny")
    cpu_small(c)
    c.model.stage_sizes = (1, 1, 1, 1)
    c.model.width = 8
    c.data.height, c.data.width = 32, 16
    c.aug.pad = 2
    c.data.p, c.data.k = 2, 2
    c.data.steps_per_epoch = 2
    c.data.num_threads = 1
    c.cluster.k1, c.cluster.k2 = 8, 3
    c.cluster.eps = 0.7
    c.cluster.min_samples = 2
    c.optim.milestones = (1,)
    c.train.num_epochs = 2
    c.train.checkpoint_every_epochs = 1
    c.train.log_every_steps = 1
    c.train.progress = False
    c.eval.batch_size = 16
    c.eval.every_epochs = 0


def adaptation(c: ml_collections.ConfigDict, source: str, target: str) -> None:
    """'SOURCE->TARGET': the target's config, started from a supervised source run.

    The source run is ``bot.py:SOURCE->TARGET`` (named by ``model.init_from_run``; MMT:
    two, seeds 0 and 1); ``data.source`` makes the run refuse to start without it. A
    published-size target keeps its recipe unchanged (the references adapt with their
    unsupervised recipe, only the starting weights change: MMT's scripts). A CPU-sized
    target trains at the references' lr (3.5e-4: the network starts trained, not from
    scratch) for 10 rounds, evaluated every 5, the decay at round 8 and a warmup (CAP's)
    shortened to 2 rounds.
    """
    common.adapt_from(c, source)
    if target not in CPU_TARGETS or target == "synthetic_tiny":  # tiny: the tests' values
        return
    c.optim.lr = 3.5e-4
    c.train.num_epochs = 10
    c.train.checkpoint_every_epochs = 2
    c.eval.every_epochs = 5
    if c.optim.schedule == "multistep":
        c.optim.milestones = (8,)
    if c.optim.warmup_epochs:  # CAP: 10 warmup epochs of 50 -> 2 of these 10
        c.optim.warmup_epochs = 2


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Cluster contrast config for the dataset or variant named by ``arg``."""
    source, arg = common.parse_transfer(arg, "synthetic", ARGS)
    c = unsupervised_base("cluster_contrast")
    c.model.pooling = "gem"  # the script's --pooling-type gem default
    if arg == "synthetic":
        common.set_dataset(c, "synthetic")
        cpu_small(c)
        c.data.p, c.data.k = 16, 4
        c.data.steps_per_epoch = 25
        c.optim.lr = 1e-3  # from scratch, as bot.py:synthetic
        # An untrained network's Jaccard graph: eps 0.6 / min_samples 4 gives 41 impure
        # clusters (purity 0.05) that collapse to < 16 after one epoch; eps 0.5 /
        # min_samples 2 gives ~300 (purity 0.28). ~10 images per synthetic identity.
        c.cluster.eps = 0.5
        c.cluster.min_samples = 2
        # From scratch the first clusters follow the cameras (camera purity 0.97);
        # standardising features per camera first brings it to 0.74 at equal identity
        # purity, and training then moves clusters across cameras (0.57 by round 9).
        c.cluster.camera_standardize = True
        c.data.steps_per_epoch = 40
        c.optim.milestones = (9,)
        c.train.num_epochs = 12
        c.train.checkpoint_every_epochs = 2
        c.eval.every_epochs = 4
    elif arg == "synthetic_tiny":
        tiny(c)
    elif arg == "cuhk01":
        common.set_dataset(c, "cuhk01")
        cpu_small(c)
        c.data.p, c.data.k = 16, 4
        c.data.steps_per_epoch = 40
        c.cluster.min_samples = 2  # CUHK01 has 4 images per person
        # eps 0.6 merged the untrained network's graph into 86 clusters of ~17 images
        # (purity 0.08) for 4 images per person; 0.5 gives 133 (purity 0.17).
        c.cluster.eps = 0.5
        c.cluster.camera_standardize = True  # two camera views, as synthetic above
        c.optim.milestones = (18,)
        c.train.num_epochs = 24
        c.train.checkpoint_every_epochs = 4
        c.eval.every_epochs = 8
    else:
        common.set_dataset(c, arg)
        c.data.height, c.data.width = 256, 128
        c.train.bn_group_size = 64  # 4 GPUs x 64 images, as the published runs
        c.data.sampler = "cluster_uniform"  # RandomMultipleGallerySampler
        c.data.resize = "bicubic"
        if arg == "msmt17":
            c.data.steps_per_epoch = 400
    if source is not None:
        adaptation(c, source, arg)
    return c
