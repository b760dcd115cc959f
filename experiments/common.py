"""Shared pieces of the experiment configs: the base config and per-dataset data settings."""

from __future__ import annotations

import ml_collections

from reid_jax import config_schema

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


def base_config(trainer: str = "supervised") -> ml_collections.ConfigDict:
    """Every key ``trainer`` reads, at its declared default (a locked ConfigDict).

    The keys, their defaults and allowed values are declared once, in
    ``reid_jax/config_schema.py`` (common sections) and beside each trainer (its own
    sections); ``python -m reid_jax.config_schema TRAINER`` lists them. The config is
    locked: assigning a key that is not declared fails at once.
    """
    return config_schema.defaults(trainer)


def reset(c: ml_collections.ConfigDict, *paths: str) -> None:
    """Sets keys ('optim.milestones') back to their declared defaults: a preset that
    switches a setting off also clears the keys only that setting reads."""
    declared = config_schema.sections(c.trainer)
    for path in paths:
        section, key = path.split(".")
        c[section][key] = declared[section][key].default


def cpu_erasing(c: ml_collections.ConfigDict) -> None:
    """Random erasing of the supervised and clustering CPU configs (synthetic, CUHK01):
    torchvision's variant (log-uniform aspect ratio, 10 tries, the mean pixel as fill),
    with which their README figures were measured. The published configs (and the DG CPU
    configs) use Zhong et al.'s, the schema default.
    On ``bot.py:synthetic`` (seed 0) Zhong et al.'s variant gave mAP 0.460, this one 0.483."""
    c.aug.erasing_aspect = "log_uniform"
    c.aug.erasing_tries = 10
    c.aug.erasing_fill = "pixel_mean"


def no_warmup(c: ml_collections.ConfigDict) -> None:
    """No learning-rate warmup (and no warmup factor)."""
    c.optim.warmup_epochs = 0
    reset(c, "optim.warmup_factor")


def set_dataset(c: ml_collections.ConfigDict, name: str) -> None:
    """Fills config.data from a DATASETS preset."""
    for k, v in DATASETS[name].items():
        c.data[k] = v
