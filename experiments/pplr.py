r"""PPLR: part-based pseudo label refinement (Cho, Kim, Kim & Yoon, "Part-based Pseudo
Label Refinement for Unsupervised Person Re-identification", CVPR 2022).

Published recipe (official yoonkicho/PPLR ``examples/train_pplr.py`` defaults):
ImageNet ResNet-50, last stride 1, global + 3 horizontal part features each with a
BNNeck and a bias-free classifier of 3000 rows (the first C re-initialised to the
normalised cluster centroids every epoch), 384x128 input, batch 64 = 16 pseudo-ids x 4,
Adam lr 3.5e-4, weight decay 5e-4, x0.1 every 20 epochs, 50 epochs of 400 iterations;
Jaccard (k1 30, k2 6) + DBSCAN (eps 0.5 on Market-1501, min_samples 4); cross agreement
over top-20 neighbours; PGLR beta 0.5; AALS from epoch 5 (label-smoothed CE before);
soft triplet (margin 0). Published: Market-1501 rank-1 92.8 / mAP 81.5, MSMT17
61.1 / 31.4. The MSMT17 DBSCAN eps is not in the official script's defaults; eps 0.5 is
kept here (tune with --config.cluster.eps).

Commands:
  # demo on the built-in synthetic data (CPU, labels hidden):
  python -m reid_jax.main --config experiments/pplr.py:synthetic --workdir runs/pplr_synth
  # real CUHK01 (486-id split 0), from scratch, CPU-sized network:
  python -m reid_jax.main --config experiments/pplr.py:cuhk01 --workdir runs/pplr_cuhk01
  # published recipe on Market-1501 (GPU; ImageNet weights imported first):
  python -m reid_jax.main --config experiments/pplr.py:market1501 \
      --workdir runs/pplr_market --config.model.init_from=/path/resnet50_flax

Domain adaptation ('SOURCE->TARGET', quoted): as cluster_contrast.py, from a
``bot.py:SOURCE->TARGET`` run. The official repository publishes no UDA setting
(train_pplr.py builds the network from ImageNet weights only; README: unsupervised
commands only).
  python -m reid_jax.main --config 'experiments/pplr.py:synthetic_all->cuhk01' \
      --workdir runs/pplr_uda_s0 --config.model.init_from_run=runs/src_s0

Arguments: synthetic, synthetic_tiny (tests), cuhk01, market1501, dukemtmc, msmt17, and
SOURCE->TARGET for domain adaptation (a SOURCE from experiments/common.py DATASETS).
"""

from __future__ import annotations

import ml_collections

from experiments import cluster_contrast, common

ARGS = cluster_contrast.ARGS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """PPLR config for the dataset or variant named by ``arg``."""
    source, arg = common.parse_transfer(arg, "synthetic", ARGS)
    c = cluster_contrast.unsupervised_base("pplr")
    c.model.name = "part_net"
    c.model.num_parts = 3
    c.data.p, c.data.k = 16, 4
    c.data.steps_per_epoch = 400
    c.data.height, c.data.width = 384, 128
    c.cluster.eps = 0.5
    c.cluster.max_clusters = 3000  # resnet50part(num_classes=3000)
    c.eval.every_epochs = 5  # official --eval-step 5
    # config.pplr keeps its declared defaults (reid_jax/train/pplr.py): k 20, beta 0.5,
    # AALS from epoch 5.
    if arg == "synthetic":
        common.set_dataset(c, "synthetic")
        cluster_contrast.cpu_small(c)
        c.data.p, c.data.k = 16, 4
        c.optim.lr = 1e-3  # from scratch, as bot.py:synthetic
        c.cluster.eps = 0.5  # as cluster_contrast.py:synthetic (untrained network)
        c.cluster.min_samples = 2
        c.cluster.max_clusters = 0
        c.pplr.aals_epoch = 2
        c.cluster.camera_standardize = True  # as cluster_contrast.py:synthetic
        c.data.steps_per_epoch = 40
        c.optim.milestones = (9,)
        c.train.num_epochs = 12
        c.train.checkpoint_every_epochs = 2
        c.eval.every_epochs = 4
    elif arg == "synthetic_tiny":
        cluster_contrast.tiny(c)
        c.cluster.max_clusters = 0
        c.pplr.k = 4
        c.pplr.aals_epoch = 1  # both branches run in a two-round test
    elif arg == "cuhk01":
        common.set_dataset(c, "cuhk01")
        cluster_contrast.cpu_small(c)
        c.data.steps_per_epoch = 50
        c.cluster.min_samples = 2
        c.cluster.max_clusters = 0
        c.optim.milestones = (20,)
        c.train.num_epochs = 30
    else:
        common.set_dataset(c, arg)
        c.data.sampler = "cluster_uniform"  # RandomMultipleGallerySampler
        c.data.resize = "bicubic"
        c.train.bn_group_size = 16  # 4 GPUs x 16 of the batch of 64 (README)
    if source is not None:
        cluster_contrast.adaptation(c, source, arg)
    return c
