r"""reid_jax entry point: train or evaluate from an ml_collections config.

  python -m reid_jax.main --config experiments/bot.py:synthetic --workdir runs/bot_synth
  python -m reid_jax.main --config experiments/bot.py:cuhk01 --workdir runs/c01 \
      --config.optim.lr=3e-4 --mode=eval

Several processes (a pod, a SLURM job, one node's GPUs one process each) run the same
command with ``--coordinator_address host:port --num_processes N --process_id i`` (what
``python -m reid_jax.launch`` passes), or with ``--multihost`` where JAX finds the
cluster itself (TPU pod slices, SLURM); process 0 writes the records.

Mistakes a user can fix (unknown config, a config value out of range or unused by the
trainer, missing dataset or weights, foreign checkpoint, impossible P x K, NaN loss, a
workdir another run is using, a full disk) end with one `error: ...` line and exit
status 2. SIGTERM checkpoints and ends with one `preempted: ...` line and exit status 0
(``reid_jax/preemption.py``); the same command resumes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from typing import Any

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from data_builders import common as builders_common
from reid_jax import distributed, errors, preemption, reporting
from reid_jax.train import loop

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. experiments/bot.py:synthetic.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, logs and pictures go.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"], "Train (then evaluate) or only evaluate.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", "", "host:port of process 0 in a multi-process run.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process's index (0 writes records).")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "Start jax.distributed from the cluster's environment (TPU pod "
    "slice, SLURM, Open MPI) instead of the three flags above.")
_RERANK = flags.DEFINE_bool("rerank", None, "Also report k-reciprocal re-ranking (sets config.eval.rerank).")

MODES: dict[str, Callable[..., dict[str, Any]]] = {
    "train": loop.train,
    "eval": loop.evaluate,
}

_COLUMNS = ["model", "rank1", "rank5", "rank10", "mAP", "mINP"]


def summary(result: dict[str, Any]) -> str:
    """The before/after table of the first evaluator, the other evaluators' tables, and
    the paths of what the run wrote."""
    rows = []
    if result.get("before"):
        rows.append({"model": result.get("before_label", "untrained"), **result["before"]})
    after = result["after"]
    rows.append({"model": "trained", **after})
    if result.get("best"):
        best = result["best"]
        rows.append({"model": f"best, epoch {best['epoch']} (test-set-selected)", **best})
    if "rerank_mAP" in after:
        rows.append({"model": "trained + re-ranking", **{c: after.get("rerank_" + c) for c in _COLUMNS[1:]}})
    lines = [reporting.format_table(rows, _COLUMNS)]
    if result.get("before"):
        gain = after["mAP"] - result["before"]["mAP"]
        what = result.get("before_label", "untrained")
        lines.append(f"mAP gain over the {what} model: {gain:+.4f}" if what == "untrained"
                     else f"mAP gain over the {what}: {gain:+.4f}")
    for name, res in list(result.get("evaluations", {}).items())[1:]:
        before = result.get("before_evaluations", {}).get(name)
        label = result.get("before_label", "untrained")
        lines += [f"evaluator {name}:", evaluator_table(res, before, label)]
    if "rows" in after:
        lines.append(evaluator_table(after))
    if "train_seconds" in result:
        lines.append(f"training time: {result['train_seconds'] / 60:.1f} min")
    lines += [f"{k}: {v}" for k, v in result["paths"].items()]
    return "\n".join(lines)


def evaluator_table(
    res: dict[str, Any], before: dict[str, Any] | None = None, before_label: str = "untrained",
) -> str:
    """One evaluator's results (after ``before``'s row when given); with per-split rows,
    one row per split, the mean and std."""
    if "rows" not in res:
        rows = [{"model": before_label, **before}] if before else []
        return reporting.format_table([*rows, {"model": "trained", **res}], _COLUMNS)
    rows = [{"model": name, **r} for name, r in res["rows"]]
    rows.append({"model": f"mean of {res['num_splits']}", **res})
    rows.append({"model": "std", **{c: res.get(f"{c}_std") for c in _COLUMNS[1:]}})
    return reporting.format_table(rows, _COLUMNS)


def run(
    config: ml_collections.ConfigDict, workdir: str, mode: str,
    overrides: Collection[str] | None = None,
) -> dict[str, Any]:
    """Validates ``config``, then trains (and evaluates) or only evaluates.

    ``overrides``: the config keys set on the command line (``config_schema.validate``).
    """
    return MODES[mode](config, workdir, overrides)


def command_line_overrides(argv: list[str]) -> set[str]:
    """The config keys an argv sets ('--config.optim.lr=1' -> 'optim.lr')."""
    keys = set()
    for arg in argv:
        if arg.startswith("--config."):
            keys.add(arg[len("--config."):].split("=", 1)[0])
    return keys


def _one_line(e: BaseException) -> str:
    """The last meaningful line of an exception raised while parsing flags."""
    lines = [ln.strip() for ln in str(e).replace("\\n", "\n").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Pass --help", "File ", "^", "~"))]
    return lines[-1].strip("'\"") if lines else type(e).__name__


def parse_flags(
    argv: list[str], flag_values: flags.FlagValues = flags.FLAGS,
    config_flag: flags.FlagHolder | None = None,
) -> list[str]:
    """absl flag parsing where a bad config name or override is one line, not a traceback
    (``flag_values``/``config_flag``: another set of flags, for tests)."""
    config_flag = _CONFIG if config_flag is None else config_flag
    try:
        rest = flag_values(argv)
        if config_flag.value is not None:
            config_flag.value.get("trainer")  # a config file that failed to load raises here
        return rest
    except Exception as e:  # noqa: BLE001 (any parse failure is the user's flags)
        msg = _one_line(e)
        if msg.startswith("Did you mean"):
            msg = f"unknown config key; {msg}"
        elif msg.isidentifier():  # a KeyError from the locked config: the first unknown name
            bad = [a.split("=")[0] for a in argv if a.startswith("--config.") and f".{msg}" in a]
            msg = (f"unknown config key {bad[0][len('--config.'):] if bad else msg!r}: not a "
                   "key of this trainer's config (python -m reid_jax.config_schema TRAINER "
                   "lists them)")
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
    overrides = command_line_overrides(sys.argv)
    if _RERANK.value is not None:
        config.eval.rerank = _RERANK.value
        overrides.add("eval.rerank")

    def work() -> None:
        distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                               auto=_MULTIHOST.value)
        result = run(config, _WORKDIR.value, _MODE.value, overrides)
        if distributed.is_primary():
            print(summary(result))

    guarded(work)


def guarded(work: Callable[[], Any]) -> Any:
    """Runs ``work()``: a mistake the user can fix ends in one ``error:`` line and exit
    status 2, a preemption in one ``preempted:`` line and exit status 0."""
    try:
        return work()
    except preemption.Preempted as e:
        if distributed.is_primary():
            print(f"preempted: {e}")
        sys.exit(0)
    except (errors.ReidError, builders_common.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
