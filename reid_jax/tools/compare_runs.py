r"""Seeds side by side: mean +- std of finished runs, grouped, with their cluster rounds.

  python -m reid_jax.tools.compare_runs --out runs/uda_cuhk01 \
      "direct transfer=runs/src_s0,runs/src_s1" \
      "cluster contrast=runs/cc_s0,runs/cc_s1,runs/cc_s2"

Each group is 'label=workdir,workdir,...' (one workdir per seed). For every run it reads
``metrics.jsonl``: the final evaluation (the last ``eval/`` record), the evaluation
before training (``eval_before/``: the direct transfer of an adaptation run) and the
pseudo-label rounds (``cluster/``). It prints one row per group (mean +- std over its
runs, the number of runs, the last round's diagnostics), writes ``OUT.json`` and, when
any group has rounds, ``OUT_rounds.png`` (each diagnostic against the round, the mean of
each group's seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from reid_jax import errors, plots, reporting

METRICS = ("rank1", "mAP")


def read_run(workdir: str) -> dict[str, Any]:
    """{'after', 'before': {metric: value} or None, 'rounds': [...]} of a finished run."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        raise errors.ReidError(f"{workdir!r} has no metrics.jsonl; give the --workdir of a run.")
    after: dict[str, float] | None = None
    before: dict[str, float] | None = None
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if "eval/mAP" in rec:
                after = {m: rec[f"eval/{m}"] for m in METRICS}
            if "eval_before/mAP" in rec:
                before = {m: rec[f"eval_before/{m}"] for m in METRICS}
    if after is None:
        raise errors.ReidError(f"{workdir!r} logged no evaluation; has the run finished?")
    return {"after": after, "before": before, "rounds": plots.read_rounds(workdir)}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def summarize(groups: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One row per group: mean and std (over its runs) of rank-1 and mAP after training
    and before it, and the mean of the last round's diagnostics."""
    rows = []
    for label, workdirs in groups.items():
        runs = [read_run(w) for w in workdirs]
        row: dict[str, Any] = {"group": label, "runs": len(runs), "workdirs": workdirs}
        for m in METRICS:
            row[m], row[f"{m}_std"] = _mean_std([r["after"][m] for r in runs])
            befores = [r["before"][m] for r in runs if r["before"] is not None]
            if befores:
                row[f"before_{m}"], row[f"before_{m}_std"] = _mean_std(befores)
        last = [r["rounds"][-1] for r in runs if r["rounds"]]
        for key in plots.CLUSTER_PANELS:
            if last and all(key in r for r in last):
                row[f"last_{key}"] = float(np.mean([r[key] for r in last]))
        row["rounds"] = _mean_rounds([r["rounds"] for r in runs])
        rows.append(row)
    return rows


def _mean_rounds(per_run: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Round-by-round mean over the runs that reached each round."""
    out = []
    for i in range(max((len(r) for r in per_run), default=0)):
        reached = [r[i] for r in per_run if len(r) > i]
        keys = set.intersection(*(set(r) for r in reached))
        out.append({k: float(np.mean([r[k] for r in reached])) for k in sorted(keys)})
    return out


def _pm(row: dict[str, Any], key: str) -> str:
    if key not in row:
        return "-"
    return f"{100 * row[key]:.1f} +- {100 * row[key + '_std']:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The printed table: percentages, mean +- std over the runs."""
    lines = [{
        "group": r["group"], "runs": r["runs"], "rank-1": _pm(r, "rank1"), "mAP": _pm(r, "mAP"),
        "before: rank-1": _pm(r, "before_rank1"), "before: mAP": _pm(r, "before_mAP"),
        "clusters": f"{r['last_num_clusters']:.0f}" if "last_num_clusters" in r else "-",
        "NMI": f"{r['last_nmi']:.3f}" if "last_nmi" in r else "-",
        "cam. purity": f"{r['last_camera_purity']:.3f}" if "last_camera_purity" in r else "-",
    } for r in rows]
    columns = ["group", "runs", "rank-1", "mAP", "before: rank-1", "before: mAP", "clusters",
               "NMI", "cam. purity"]
    return reporting.format_table(lines, columns)


def parse_groups(specs: Sequence[str]) -> dict[str, list[str]]:
    """'label=dir,dir' -> {label: [dir, dir]}."""
    groups = {}
    for spec in specs:
        label, sep, dirs = spec.partition("=")
        if not sep or not dirs.strip():
            raise errors.ReidError(f"group {spec!r} is not 'label=workdir,workdir,...'.")
        groups[label.strip()] = [d.strip() for d in dirs.split(",") if d.strip()]
    return groups


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: prints the table, writes OUT.json and OUT_rounds.png."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="+", help="label=workdir,workdir,...")
    parser.add_argument("--out", required=True, help="path prefix of the JSON and the PNG")
    parser.add_argument("--title", default="", help="title of the PNG")
    args = parser.parse_args(argv)
    rows = summarize(parse_groups(args.groups))
    print(table(rows))
    out = {"rows": rows, "json": args.out + ".json"}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with_rounds = {r["group"]: r["rounds"] for r in rows if r["rounds"]}
    if with_rounds:
        out["png"] = plots.cluster_rounds(with_rounds, args.out + "_rounds.png", args.title)
        print(f"rounds: {out['png']}")
    with open(out["json"], "w") as f:
        json.dump(rows, f, indent=1)
    print(f"json: {out['json']}")
    return out


if __name__ == "__main__":
    try:
        main()
    except errors.ReidError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
