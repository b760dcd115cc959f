r"""reid_jax entry point: train or evaluate from an ml_collections config.

  python -m reid_jax.main --config experiments/bot.py:synthetic --workdir runs/bot_synth
  python -m reid_jax.main --config experiments/bot.py:cuhk01 --workdir runs/c01 \
      --config.optim.lr=3e-4 --mode=eval

Mistakes a user can fix (unknown config, missing dataset, foreign checkpoint, impossible
P x K, NaN loss) end with one `error: ...` line and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from data_builders import common as builders_common
from reid_jax import errors, reporting
from reid_jax.evaluation import splits
from reid_jax.train import cluster, m3l, metabin, supervised

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. experiments/bot.py:synthetic.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, logs and pictures go.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"], "Train (then evaluate) or only evaluate.")
_RERANK = flags.DEFINE_bool("rerank", None, "Also report k-reciprocal re-ranked results (sets config.eval.rerank).")

# An explicit map from config.trainer to the function that runs it.
TRAINERS: dict[str, dict[str, Callable[[ml_collections.ConfigDict, str], dict[str, Any]]]] = {
    "supervised": {"train": supervised.train_and_evaluate, "eval": supervised.evaluate_checkpoint},
    "cluster_contrast": {"train": cluster.train_and_evaluate, "eval": cluster.evaluate_checkpoint},
    "pplr": {"train": cluster.train_and_evaluate, "eval": cluster.evaluate_checkpoint},
    "cap": {"train": cluster.train_and_evaluate, "eval": cluster.evaluate_checkpoint},
    "mmt": {"train": cluster.train_and_evaluate, "eval": cluster.evaluate_checkpoint},
    "metabin": {"train": metabin.train_and_evaluate, "eval": metabin.evaluate_checkpoint},
    "m3l": {"train": m3l.train_and_evaluate, "eval": m3l.evaluate_checkpoint},
}

_COLUMNS = ["model", "rank1", "rank5", "rank10", "mAP", "mINP"]


def summary(result: dict[str, Any]) -> str:
    """The before/after table and the paths of what the run wrote."""
    rows = []
    if result.get("before"):
        rows.append({"model": "untrained", **result["before"]})
    rows.append({"model": "trained", **result["after"]})
    if "rerank_mAP" in result["after"]:
        after = result["after"]
        rows.append({"model": "trained + re-ranking", **{c: after.get("rerank_" + c) for c in _COLUMNS[1:]}})
    lines = [reporting.format_table(rows, _COLUMNS)]
    if result.get("before"):
        gain = result["after"]["mAP"] - result["before"]["mAP"]
        lines.append(f"mAP gain over the untrained model: {gain:+.4f}")
    if "train_seconds" in result:
        lines.append(f"training time: {result['train_seconds'] / 60:.1f} min")
    lines += [f"{k}: {v}" for k, v in result["paths"].items()]
    return "\n".join(lines)


def run(config: ml_collections.ConfigDict, workdir: str, mode: str) -> dict[str, Any]:
    """Runs ``mode`` of the trainer named by ``config.trainer``."""
    if config.trainer not in TRAINERS:
        raise errors.ReidError(
            f"unknown config.trainer {config.trainer!r}; choose one of {', '.join(TRAINERS)}."
        )
    return TRAINERS[config.trainer][mode](config, workdir)


def evaluate_splits(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Evaluates the newest checkpoint of ``workdir`` on every dataset of ``eval.splits``.

    ``config.eval.splits`` is a comma-separated list of datasets (e.g. ``grid/s0,...,grid/s9``)
    whose ``query`` / ``gallery`` splits are each a test set; small benchmarks are reported
    as the mean over 10 such splits (MetaBIN's protocol). Returns the per-split results
    ('splits', a list of (dataset, metrics)) and their mean and standard deviation ('mean', from
    ``evaluation.splits.aggregate_splits``).
    """
    names = [n.strip() for n in config.eval.splits.split(",") if n.strip()]
    per_split = []
    for name in names:
        c = config.copy_and_resolve_references()
        c.data.query, c.data.gallery = f"{name}:query", f"{name}:gallery"
        c.eval.before_training = False
        per_split.append(run(c, workdir, "eval")["after"])
    return {"splits": list(zip(names, per_split)), "mean": splits.aggregate_splits(per_split)}


def splits_summary(result: dict[str, Any]) -> str:
    """One row per split, then the mean and the standard deviation."""
    rows = [{"model": name, **r} for name, r in result["splits"]]
    mean = result["mean"]
    rows.append({"model": f"mean of {mean['num_splits']}", **mean})
    rows.append({"model": "std", **{c: mean.get(f"{c}_std") for c in _COLUMNS[1:]}})
    return reporting.format_table(rows, _COLUMNS)


def _one_line(e: BaseException) -> str:
    """The last meaningful line of an exception raised while parsing flags."""
    lines = [ln.strip() for ln in str(e).replace("\\n", "\n").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Pass --help", "File ", "^", "~"))]
    return lines[-1].strip("'\"") if lines else type(e).__name__


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing where a bad config name or override is one line, not a traceback."""
    try:
        rest = flags.FLAGS(argv)
        if _CONFIG.value is not None:
            _CONFIG.value.get("trainer")  # a config file that failed to load raises here
        return rest
    except Exception as e:  # noqa: BLE001 (any parse failure is the user's flags)
        msg = _one_line(e)
        if msg.startswith("Did you mean"):
            msg = f"unknown config key; {msg}"
        print(f"error: {msg} (in the command-line flags: {' '.join(argv[1:])})", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str]) -> None:
    """absl main: checks flags, runs, prints the summary table."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if _CONFIG.value is None or not _WORKDIR.value:
        print("error: --config and --workdir are required, e.g. --config "
              "experiments/bot.py:synthetic --workdir runs/bot_synth", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    config = _CONFIG.value
    if _RERANK.value is not None:
        config.eval.rerank = _RERANK.value
    try:
        result = run(config, _WORKDIR.value, _MODE.value)
        print(summary(result))
        if config.eval.get("splits", ""):
            print(splits_summary(evaluate_splits(config, _WORKDIR.value)))
    except (errors.ReidError, builders_common.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
