r"""CAP: camera-aware proxies for unsupervised re-ID (Wang, Lai, Huang, Gong & Hua,
"Camera-aware Proxies for Unsupervised Person Re-Identification", AAAI 2021).

Recipe (official Terminator8758/CAP-master ``train_cap.py`` defaults and
``reid/models/stb_net.py``): ResNet-50 (ImageNet weights, last stride 1, no ReLU after
the stem's BatchNorm) with a BNNeck, 256x128 bicubic input, batch 32 = 8 proxies x 4
pictures (``ClassUniformlySampler``: every proxy once per pass), Adam lr 3.5e-4, weight
decay 5e-4, warmup over 10 epochs from 0.01 x lr and x0.1 at epochs 20 and 40, stepped
per epoch, 50 epochs of (clustered pictures // 32) iterations, recomputed every epoch;
every epoch Jaccard distance (k1 20, k2 6) + DBSCAN (eps 0.5, min_samples 4), clusters
split by camera into proxies; proxy memory momentum 0.2, temperature 0.07; inter-camera
loss (weight 0.5, 50 hard negative proxies) from epoch 5; random erasing up to 0.2 of
the picture. Published (README figure, Table 2; rank-1 / mAP): Market-1501 91.4 / 79.2,
DukeMTMC 81.1 / 67.3, MSMT17 67.4 / 36.9. Sources and deviations:
``python -m reid_jax.recipes show experiments/cap.py:market1501``.

Commands:
  python -m reid_jax.main --config experiments/cap.py:synthetic --workdir runs/cap_synth
  python -m reid_jax.main --config experiments/cap.py:cuhk01 --workdir runs/cap_cuhk01
  python -m reid_jax.main --config experiments/cap.py:market1501 --workdir runs/cap_market \
      --config.model.init_from=/path/resnet50_flax

Domain adaptation ('SOURCE->TARGET', quoted): as cluster_contrast.py, from a
``bot.py:SOURCE->TARGET`` run. The official repository publishes no UDA result or script
for CAP (README: "pure unsupervised"; train_cap.py takes only --target, and its
--load_ckpt is forced to '').
  python -m reid_jax.main --config 'experiments/cap.py:synthetic_all->cuhk01' \
      --workdir runs/cap_uda_s0 --config.model.init_from_run=runs/src_s0

Arguments: synthetic, synthetic_tiny (tests), cuhk01, market1501, dukemtmc, msmt17, and
SOURCE->TARGET for domain adaptation (a SOURCE from experiments/common.py DATASETS).
"""

from __future__ import annotations

import ml_collections

from experiments import cluster_contrast, common

ARGS = cluster_contrast.ARGS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """CAP config for the dataset or variant named by ``arg``."""
    source, arg = common.parse_transfer(arg, "synthetic", ARGS)
    c = cluster_contrast.unsupervised_base("cap")
    c.model.pooling = "avg"
    c.data.p, c.data.k = 8, 4
    c.data.steps_per_epoch = 0  # one pass: clustered images // batch (about N // 32)
    c.cluster.k1, c.cluster.k2 = 20, 6
    c.cluster.eps = 0.5
    c.optim.warmup_epochs = 10
    c.optim.warmup_factor = 0.01
    # config.cap keeps its declared defaults (reid_jax/train/cap.py): temperature 0.07,
    # momentum 0.2, 50 hard negatives, inter-camera loss x0.5 from epoch 5.
    if arg == "synthetic":
        common.set_dataset(c, "synthetic")
        cluster_contrast.cpu_small(c)
        c.data.p, c.data.k = 16, 4
        c.data.steps_per_epoch = 25
        c.cluster.eps = 0.5  # as cluster_contrast.py:synthetic (untrained network)
        c.cluster.min_samples = 2
        c.optim.lr = 1e-3
        common.no_warmup(c)
        c.optim.milestones = (3,)
        c.cap.crosscam_epoch = 1
        c.train.num_epochs = 4
        c.train.checkpoint_every_epochs = 1
        c.eval.every_epochs = 0
    elif arg == "synthetic_tiny":
        cluster_contrast.tiny(c)
        common.no_warmup(c)
        c.cap.crosscam_epoch = 1  # both losses run in a two-round test
        c.cap.hard_negatives = 4
    elif arg == "cuhk01":
        common.set_dataset(c, "cuhk01")
        cluster_contrast.cpu_small(c)
        c.cluster.min_samples = 2
        c.optim.milestones = (20,)
        c.train.num_epochs = 30
    else:
        common.set_dataset(c, arg)
        c.data.height, c.data.width = 256, 128
        c.data.sampler = "cluster_uniform"  # ClassUniformlySampler over the proxies
        c.data.resize = "bicubic"
        c.aug.erasing_max_area = 0.2  # reid/utils/data/transforms.py: sh=0.2
        c.model.stem_relu = False  # reid/models/stb_net.py: conv1 -> bn1 -> maxpool
        c.optim.schedule_unit = "epoch"  # lr_scheduler.step(epoch) at each epoch's start
    if source is not None:
        cluster_contrast.adaptation(c, source, arg)
    return c
