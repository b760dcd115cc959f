r"""MMT: mutual mean-teaching (Ge, Chen & Li, "Mutual Mean-Teaching: Pseudo Label Refinery
for Unsupervised Domain Adaptation on Person Re-identification", ICLR 2020).

Recipe (official yxgeee/MMT README, ``mmt_train_kmeans.py`` Duke -> Market command:
``--num-clusters 500 --soft-ce-weight 0.5 --soft-tri-weight 0.8 --iters 800 --epochs
40 --lr 0.00035 --alpha 0.999``): two ResNet-50 students initialised from two
source-domain models trained with different seeds, their EMA mean teachers, 256x128
input, batch 64 = 16 pseudo-ids x 4, Adam lr 3.5e-4 (constant), weight decay 5e-4;
every epoch k-means (500 clusters on Market-1501, 700 on DukeMTMC, 1500 on MSMT17) on
the mean of the two teachers' features, all four classifiers set to the normalised
centroids. Published (DukeMTMC -> Market-1501, ResNet-50, k-means 500): mAP 71.2,
rank-1 87.7. Without a source-pretrained model (pure unsupervised), start both students
from ImageNet weights (``--config.model.init_from``, both then start equal) or from
scratch (different seeds).

Commands:
  python -m reid_jax.main --config experiments/mmt.py:synthetic --workdir runs/mmt_synth
  python -m reid_jax.main --config experiments/mmt.py:market1501 --workdir runs/mmt_market \
      --config.model.init_from=/path/source_pretrained_resnet50_flax

Domain adaptation is MMT's own setting: 'SOURCE->TARGET' (quoted) names the source
dataset, and ``model.init_from_run`` the two source runs (``bot.py:SOURCE->TARGET`` with
seeds 1 and 2: MMT's source pre-training, target pictures forwarded for BatchNorm).
Published (README figs/results.png, ResNet-50, mAP / rank-1): source model alone
Market -> Duke 29.6 / 46.0, Duke -> Market 31.8 / 61.9; MMT-500 63.1 / 76.8 and
71.2 / 87.7; MMT-700 65.1 / 78.0 and 69.0 / 86.8; Market -> MSMT17 MMT-1500 22.9 / 49.2,
Duke -> MSMT17 MMT-1000 23.5 / 50.0.
  python -m reid_jax.main --config 'experiments/bot.py:dukemtmc->market1501' \
      --workdir runs/src_duke_s1 --config.seed=1     # and --config.seed=2
  python -m reid_jax.main --config 'experiments/mmt.py:dukemtmc->market1501' \
      --workdir runs/mmt_duke_market \
      --config.model.init_from_run=runs/src_duke_s1,runs/src_duke_s2
  # CPU: synthetic -> CUHK01 (README, domain adaptation)
  python -m reid_jax.main --config 'experiments/mmt.py:synthetic_all->cuhk01' \
      --workdir runs/mmt_uda_s0 --config.model.init_from_run=runs/src_s0,runs/src_s1

Arguments: synthetic, synthetic_tiny (tests), cuhk01, market1501, dukemtmc, msmt17, and
SOURCE->TARGET for domain adaptation (a SOURCE from experiments/common.py DATASETS).
"""

from __future__ import annotations

import ml_collections

from experiments import cluster_contrast, common

ARGS = cluster_contrast.ARGS
# MMT README: --num-clusters 500 (Market), 700 (Duke), 1500 (MSMT17).
NUM_CLUSTERS = {"market1501": 500, "dukemtmc": 700, "msmt17": 1500, "cuhk01": 300}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """MMT config for the dataset or variant named by ``arg``."""
    source, arg = common.parse_transfer(arg, "synthetic", ARGS)
    c = cluster_contrast.unsupervised_base("mmt")
    c.model.pooling = "avg"
    c.data.p, c.data.k = 16, 4
    c.data.steps_per_epoch = 800
    c.cluster.method = "kmeans"
    c.optim.schedule = "constant"
    c.train.num_epochs = 40
    # config.mmt keeps its declared defaults (reid_jax/train/mmt.py): soft CE 0.5,
    # soft triplet 0.8, alpha 0.999, label smoothing 0.1.
    if arg == "synthetic":
        common.set_dataset(c, "synthetic")
        cluster_contrast.cpu_small(c)
        c.data.steps_per_epoch = 25
        c.cluster.num_clusters = 200  # ~2/3 of the 300 identities, as 500 of Market's 751
        c.optim.lr = 1e-3
        c.train.num_epochs = 4
        c.train.checkpoint_every_epochs = 1
        c.eval.every_epochs = 0
    elif arg == "synthetic_tiny":
        cluster_contrast.tiny(c)
        c.cluster.num_clusters = 4
    elif arg == "cuhk01":
        common.set_dataset(c, "cuhk01")
        cluster_contrast.cpu_small(c)
        c.data.steps_per_epoch = 50
        c.train.num_epochs = 30
    else:
        common.set_dataset(c, arg)
        c.data.height, c.data.width = 256, 128
        c.data.steps_per_epoch = 400  # scripts/train_mmt_kmeans.sh --iters 400
        c.data.sampler = "cluster_uniform"  # RandomMultipleGallerySampler
        c.data.resize = "bicubic"
        c.model.stem_relu = False  # mmt/models/resnet.py: "no relu"
        c.train.bn_group_size = 16  # 4 GPUs x 16 (README: keep 16 per BN replica)
    c.cluster.num_clusters = NUM_CLUSTERS.get(arg, c.cluster.num_clusters)
    c.cluster.max_clusters = c.cluster.num_clusters  # classifier rows = k
    common.reset(c, "optim.milestones", "optim.gamma")  # a constant learning rate
    common.reset(c, "cluster.k1", "cluster.k2", "cluster.eps", "cluster.min_samples")  # k-means
    if source is not None:
        cluster_contrast.adaptation(c, source, arg)
        if arg == "cuhk01":  # two students per step: 25 steps train as many networks as
            c.data.steps_per_epoch = 25  # 50 single-network steps, in the 20-minute budget
    return c
