"""Shared pieces of the experiment configs: the base config and per-dataset data settings."""

from __future__ import annotations

import ml_collections

# Dataset presets: builder (with config), split names. Real datasets must be built first
# with `python -m reid_jax.data.build NAME --manual_dir DIR`.
_TQG = dict(train="train", query="query", gallery="gallery")
DATASETS = {
    "synthetic": dict(dataset="synthetic_persons/default", **_TQG),
    "synthetic_tiny": dict(dataset="synthetic_persons/tiny", **_TQG),
    "cuhk01": dict(dataset="cuhk01/p486_s0", **_TQG),
    "cuhk01_p100": dict(dataset="cuhk01/p100_s0", **_TQG),
    "market1501": dict(dataset="market1501/standard", **_TQG),
    "dukemtmc": dict(dataset="dukemtmc_reid/standard", **_TQG),
    "msmt17": dict(dataset="msmt17/v2", **_TQG),
    "cuhk03_labeled": dict(dataset="cuhk03/np_labeled", **_TQG),
    "cuhk03_detected": dict(dataset="cuhk03/np_detected", **_TQG),
    "viper": dict(dataset="viper/s0", **_TQG),
    "grid": dict(dataset="grid/s0", **_TQG),
    "prid2011": dict(dataset="prid2011/s0", **_TQG),
    "ilids": dict(dataset="ilids/s0", **_TQG),
}


def parse_arg(arg: str | None, default: str, allowed: tuple[str, ...]) -> str:
    """Validates the ':arg' of ``--config file.py:arg``."""
    arg = arg or default
    if arg not in allowed:
        raise ValueError(f"unknown config argument {arg!r}; choose one of {', '.join(allowed)}.")
    return arg


def base_config() -> ml_collections.ConfigDict:
    """Every key a supervised run reads, with neutral defaults."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_devices = 0  # 0 = all visible devices
    c.trainer = "supervised"

    c.data = ml_collections.ConfigDict()
    c.data.dataset = "synthetic_persons/default"
    c.data.train = "train"  # 'split' or 'dataset:split', comma-separated for a multi-source mix
    c.data.query = "query"
    c.data.gallery = "gallery"
    c.data.data_dir = ""  # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.data.height = 256
    c.data.width = 128
    c.data.p = 16
    c.data.k = 4
    # LSRO (Zheng et al. 2017): extra 'dataset:split' pictures that enter training
    # unlabeled (label -1, uniform identity target; needs loss.lsro), this many per batch
    # appended to the P x K identities.
    c.data.unlabeled = ""
    c.data.unlabeled_per_batch = 0
    c.data.steps_per_epoch = 0  # 0 = every identity's K-chunks about once per epoch
    c.data.num_threads = 4

    c.aug = ml_collections.ConfigDict()
    c.aug.flip = 0.5
    c.aug.pad = 10
    c.aug.erasing = 0.5
    c.aug.color_jitter = 0.0

    c.model = ml_collections.ConfigDict()
    c.model.name = "reid_net"
    c.model.backbone = "resnet50"
    c.model.stage_sizes = ml_collections.FieldReference(None, field_type=tuple)
    c.model.width = 64
    c.model.last_stride = 1
    c.model.pooling = "avg"
    c.model.neck = "bnneck"
    c.model.norm = "bn"
    c.model.dtype = "float32"
    c.model.init_from = ""  # converted PyTorch weights (python -m reid_jax.tools.import_torch)

    c.loss = ml_collections.ConfigDict()
    c.loss.id_weight = 1.0
    c.loss.label_smoothing = 0.1
    c.loss.triplet_weight = 1.0
    c.loss.triplet_margin = 0.3
    c.loss.soft_margin = False
    c.loss.center_weight = 0.0005
    c.loss.center_lr = 0.5

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"
    c.optim.lr = 3.5e-4
    c.optim.momentum = 0.9
    c.optim.weight_decay = 5e-4
    c.optim.decay_norm_and_bias = True
    c.optim.schedule = "multistep"
    c.optim.milestones = (40, 70)
    c.optim.gamma = 0.1
    c.optim.warmup_epochs = 10
    c.optim.warmup_factor = 0.1
    c.optim.grad_clip = 0.0

    c.train = ml_collections.ConfigDict()
    c.train.num_epochs = 120
    c.train.log_every_steps = 20
    c.train.checkpoint_every_epochs = 10
    c.train.stop_after_epochs = 0  # >0: stop early (as if interrupted); resume continues
    c.train.progress = True

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 128
    c.eval.metric = "cosine"
    c.eval.feature = "neck_features"
    c.eval.flip = False
    c.eval.before_training = True
    c.eval.every_epochs = 0
    c.eval.num_ranked_queries = 6
    c.eval.rerank = False  # also report k-reciprocal re-ranking (Zhong et al. 2017)
    c.eval.rerank_k1 = 20
    c.eval.rerank_k2 = 6
    c.eval.rerank_lambda = 0.3
    # Comma-separated datasets whose query/gallery are each a test set: after training (or
    # with --mode=eval) every one is evaluated and the mean and std printed (10-split mean).
    c.eval.splits = ""
    c.eval.aqe_k = 0  # >0: average query expansion (alpha-QE) over this many neighbours
    return c


def set_dataset(c: ml_collections.ConfigDict, name: str) -> None:
    """Fills config.data from a DATASETS preset."""
    for k, v in DATASETS[name].items():
        c.data[k] = v
