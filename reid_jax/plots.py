"""Line charts drawn with PIL (no plotting library needed): cluster diagnostics per round.

``line_panels`` draws one panel per quantity, each with one line per series (a run, a
seed, a method), shared x axis (the round), into a PNG. ``cluster_rounds`` reads a
run's logged ``cluster/`` metrics and draws the standard diagnostics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw

# The per-round diagnostics of a clustering run (reid_jax/train/rounds.py), in panel order.
CLUSTER_PANELS = ("num_clusters", "outlier_fraction", "nmi", "purity", "camera_purity")
_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
            (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
_W, _H, _PAD = 360, 220, 40

Series = Mapping[str, Sequence[tuple[float, float]]]  # label -> [(x, y), ...]


def line_panels(panels: Mapping[str, Series], path: str, title: str = "",
                xlabel: str = "round") -> str:
    """Draws one line chart per panel (title -> series) side by side; returns ``path``."""
    legend = list(dict.fromkeys(label for series in panels.values() for label in series))
    top = 24 if title else 0
    img = Image.new("RGB", (_W * max(1, len(panels)), top + _H + 16 * len(legend) + 8), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((8, 6), title, fill="black")
    for i, (name, series) in enumerate(panels.items()):
        _panel(draw, i * _W, top, name, series, legend, xlabel)
    for j, label in enumerate(legend):
        y = top + _H + 4 + 16 * j
        draw.line([(8, y + 6), (28, y + 6)], fill=_COLOURS[j % len(_COLOURS)], width=3)
        draw.text((34, y), label, fill="black")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)
    return path


def _panel(draw: ImageDraw.ImageDraw, x0: int, y0: int, name: str, series: Series,
           legend: list[str], xlabel: str) -> None:
    points = [p for pts in series.values() for p in pts]
    left, right, top, bottom = x0 + _PAD + 10, x0 + _W - 12, y0 + 20, y0 + _H - _PAD
    draw.text((x0 + _PAD, y0 + 4), name, fill="black")
    draw.rectangle([left, top, right, bottom], outline=(160, 160, 160))
    if not points:
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    xlo, xhi = min(xs), max(xs)
    ylo, yhi = min(ys), max(ys)
    if ylo >= 0 and yhi <= 1:  # fractions: the whole [0, 1] range
        ylo, yhi = 0.0, 1.0
    xhi, yhi = (xhi if xhi > xlo else xlo + 1), (yhi if yhi > ylo else ylo + 1)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - xlo) / (xhi - xlo) * (right - left),
                bottom - (y - ylo) / (yhi - ylo) * (bottom - top))

    for v in (ylo, yhi):
        draw.text((x0 + 4, to_px(xlo, v)[1] - 6), f"{v:.3g}", fill="black")
    for v in (xlo, xhi):
        draw.text((to_px(v, ylo)[0] - 4, bottom + 4), f"{v:g}", fill="black")
    draw.text(((left + right) // 2 - 12, bottom + 18), xlabel, fill="black")
    for label, pts in series.items():
        colour = _COLOURS[legend.index(label) % len(_COLOURS)]
        px = [to_px(x, y) for x, y in sorted(pts)]
        if len(px) > 1:
            draw.line(px, fill=colour, width=2)
        for x, y in px:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)


def read_rounds(workdir: str) -> list[dict[str, float]]:
    """The ``cluster/`` records of ``workdir/metrics.jsonl`` (one per round, in order; a
    round logged twice, by a run and its resumption, keeps the later record)."""
    path = os.path.join(workdir, "metrics.jsonl")
    by_round: dict[int, dict[str, float]] = {}
    if not os.path.exists(path):
        return []
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            stats = {k[len("cluster/"):]: v for k, v in rec.items() if k.startswith("cluster/")}
            if stats:
                by_round[int(stats.get("round", len(by_round) + 1))] = stats
    return [by_round[r] for r in sorted(by_round)]


def cluster_rounds(runs: Mapping[str, Sequence[Mapping[str, float]]], path: str,
                   title: str = "") -> str:
    """The cluster diagnostics (``CLUSTER_PANELS``) of each run (label -> its rounds)
    against the round; returns ``path``."""
    panels = {
        name: {label: [(i + 1, float(r[name])) for i, r in enumerate(rounds) if name in r]
               for label, rounds in runs.items()}
        for name in CLUSTER_PANELS
    }
    return line_panels(panels, path, title)
