"""Shared pieces of the experiment configs: the base config and per-dataset data settings."""

from __future__ import annotations

import ml_collections

from reid_jax import config_schema
from reid_jax.data import sources

# Dataset presets: builder (with config), split names. Real datasets must be built first
# with `python -m reid_jax.data.build NAME --manual_dir DIR`.
_TQG = dict(train="train", query="query", gallery="gallery")
DATASETS = {
    "synthetic": dict(dataset="synthetic_persons/default", **_TQG),
    "synthetic_tiny": dict(dataset="synthetic_persons/tiny", **_TQG),
    # Every rendering domain: the default set (300 identities, one style family) and the
    # four multidomain families (4 x 100 identities): 700 training identities, ~7,000
    # pictures. Evaluated on the default set's query/gallery.
    "synthetic_all": dict(
        dataset="synthetic_persons/default", query="query", gallery="gallery",
        train=",".join(["train"] + [f"synthetic_persons/multidomain:train_d{d}" for d in range(4)]),
    ),
    "synthetic_multidomain_tiny": dict(  # tests: a tiny source for synthetic_tiny
        dataset="synthetic_persons/multidomain_tiny",
        train=",".join(f"train_d{d}" for d in range(4)), query="query_d0", gallery="gallery_d0",
    ),
    "synthetic_multidomain": dict(
        dataset="synthetic_persons/multidomain",
        train=",".join(f"train_d{d}" for d in range(4)), query="query_d0", gallery="gallery_d0",
    ),
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
    if arg.endswith("-"):  # an unquoted 'A->B': the shell took '>B' as a redirection
        raise ValueError(f"config argument {arg!r} looks cut at '>': quote it, as in "
                         "--config 'experiments/mmt.py:market1501->dukemtmc'.")
    if arg not in allowed:
        raise ValueError(f"unknown config argument {arg!r}; choose one of {', '.join(allowed)}.")
    return arg


def parse_transfer(
    arg: str | None, default: str, allowed: tuple[str, ...],
    sources: tuple[str, ...] | None = None, targets: tuple[str, ...] | None = None,
    any_dataset_target: bool = False,
) -> tuple[str | None, str]:
    """Reads a ``SOURCE->TARGET`` config argument (``experiments/mmt.py:market1501->dukemtmc``).

    Args:
      arg: the ':arg' of ``--config file.py:arg``.
      default: the argument when none is given.
      allowed: the plain arguments.
      sources, targets: the names allowed on either side of '->' (default: the DATASETS
        presets as sources, ``allowed`` as targets).
      any_dataset_target: also accept any built TFDS 'builder/config' as the target
        (splits train, query, gallery: a ``custom_folder`` build).

    Returns:
      (source, target) for 'SOURCE->TARGET'; (None, arg) for a plain argument.
    """
    arg = arg or default
    source, sep, target = arg.partition("->")
    if not sep:
        return None, parse_arg(arg, default, allowed)
    for name, names, side in ((source, sources or tuple(DATASETS), "source"),
                              (target, targets or allowed, "target")):
        if name not in names and not (side == "target" and any_dataset_target and "/" in name):
            raise ValueError(f"unknown {side} {name!r} in {arg!r}; choose one of "
                             f"{', '.join(names)}.")
    return source, target


def adapt_from(c: ml_collections.ConfigDict, source: str) -> None:
    """Marks ``c`` as a domain-adaptation run from the DATASETS preset ``source``: the run
    must start from a source run (``model.init_from_run``) trained on its pictures."""
    s = DATASETS[source]
    c.data.source = sources.spec_string(s["train"], s["dataset"])


def evaluate_on(c: ml_collections.ConfigDict, target: str) -> None:
    """Evaluators read the query/gallery of ``target`` (a DATASETS preset or a TFDS
    'builder/config'): source pre-training evaluated on the target, the direct transfer."""
    t = target_splits(target)
    c.data.query = f"{t['dataset']}:{t['query']}"
    c.data.gallery = f"{t['dataset']}:{t['gallery']}"


def target_splits(target: str) -> dict[str, str]:
    """The DATASETS preset ``target``, or for a TFDS 'builder/config' name (a
    ``custom_folder`` build) that dataset with splits train, query, gallery."""
    return DATASETS[target] if target in DATASETS else dict(dataset=target, **_TQG)


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
