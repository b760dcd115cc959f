"""Run records: metrics to JSON lines and TensorBoard, the config beside them, progress bars.

TensorBoard event files are written with tensorboardX, which needs no TensorFlow.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import ml_collections
import numpy as np
import tqdm
from tensorboardX import SummaryWriter


class MetricWriter:
    """Appends scalar metrics to ``workdir/metrics.jsonl`` and TensorBoard events
    (``enabled=False``: writes nothing, the other processes of a multi-process run)."""

    def __init__(self, workdir: str, enabled: bool = True) -> None:
        os.makedirs(workdir, exist_ok=True)
        self.jsonl_path = os.path.join(workdir, "metrics.jsonl")
        self.tb_dir = os.path.join(workdir, "tensorboard")
        self.enabled = enabled
        if enabled:
            self._jsonl = open(self.jsonl_path, "a")  # noqa: SIM115 (closed in close())
            self._tb = SummaryWriter(self.tb_dir)

    def write(self, step: int, metrics: Mapping[str, Any], prefix: str = "") -> None:
        """Writes scalars (host values) at ``step``."""
        if not self.enabled:
            return
        record = {"step": int(step)}
        for k, v in metrics.items():
            v = float(np.asarray(v))
            record[prefix + k] = v
            self._tb.add_scalar(prefix + k, v, int(step))
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        self._tb.flush()

    def close(self) -> None:
        """Flushes and closes both files."""
        if not self.enabled:
            return
        self._jsonl.close()
        self._tb.close()


def run_paths(workdir: str, writer: MetricWriter, checkpoint_dir: Any) -> dict[str, str]:
    """The paths a trainer prints at the end of a run."""
    return {
        "workdir": workdir,
        "tensorboard": writer.tb_dir,
        "metrics": writer.jsonl_path,
        "checkpoints": str(checkpoint_dir),
    }


def write_config(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Dumps the config as JSON to ``workdir/config.json``; returns the path."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    with open(path, "w") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    return path


def progress(iterable: Iterable, total: int, desc: str, enabled: bool = True) -> Iterable:
    """A tqdm bar on stderr (disabled with ``enabled=False`` or a non-tty and CI)."""
    disable = not enabled or (os.environ.get("CI") == "true" and not sys.stderr.isatty())
    return tqdm.tqdm(iterable, total=total, desc=desc, leave=False, disable=disable, dynamic_ncols=True)


def format_table(rows: list[Mapping[str, Any]], columns: list[str]) -> str:
    """A plain-text table: one row per dict, values formatted to 4 significant places."""

    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])
