"""Pair scoring benchmark: pairs/s of the pair networks and the time to evaluate a test set.

A pair network ranks a query by scoring it against every gallery picture. Measured here,
for IDLA (60 x 160) and the gated siamese CNN (128 x 64; also its baseline without gates,
whose "pairs" are one distance of two embeddings), with random weights and pictures:

- ``embed``: pictures/s of the per-picture part (done once per picture);
- ``pairs``: pairs/s of ``reid_jax.evaluation.pairs.iter_pair_distances`` (the
  evaluators' path: blocks of pairs over the mesh, the pair part only), measured on
  ``--rows`` query rows against a whole gallery of each size;
- ``naive``: pairs/s of the whole network on raw picture pairs (the per-picture layers
  recomputed for every pair), the cost without the trunk/pair split;
- the time to evaluate each size: embedding every picture once plus every pair, from the
  measured rates (``measured`` when ``--full`` scores every pair, else extrapolated from
  the measured rows).

Sizes: CUHK01 486-id test (972 query x 972 gallery pictures, both cameras' two pictures
per identity), its single-shot subset (486 x 486), Market-1501 (3,368 x 15,913). No peer
library has these networks (torchreid and fast-reid do not), so there is no peer row.
Wall and process CPU time are both reported, with the load average.

Usage:
  python benchmarks/pair_scoring.py                 # all models, extrapolated
  python benchmarks/pair_scoring.py --models idla --rows 16
Writes benchmarks/results/pair_scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from reid_jax import sharding
from reid_jax.evaluation import pairs
from reid_jax.models import pairwise

SIZES = {"cuhk01": (972, 972), "cuhk01_single_shot": (486, 486), "market1501": (3368, 15913)}
MODELS = {
    "idla": (lambda: pairwise.IDLA(), (160, 60)),
    "gated_scnn": (lambda: pairwise.GatedSCNN(), (128, 64)),
    "scnn_baseline": (lambda: pairwise.GatedSCNN(gate_layers=()), (128, 64)),
}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "pair_scoring.json")


def _timed(fn, repeats: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds of the mean of ``repeats`` calls after one warm-up call."""
    fn()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - w0) / repeats, (time.process_time() - c0) / repeats


def bench(name: str, rows: int, pair_block: int, full: bool) -> dict:
    """Rates of one model and the evaluation time of every size."""
    make, (h, w) = MODELS[name]
    model = make()
    mesh = sharding.make_mesh(0)
    x = jax.random.uniform(jax.random.key(0), (64, h, w, 3))
    variables = model.init(jax.random.key(1), x)
    embed = jax.jit(lambda v, x: model.apply(v, x, method="embed"))
    ew, ec = _timed(lambda: embed(variables, x).block_until_ready(), 3)
    trunk = np.asarray(embed(variables, x))
    out = {"model": name, "input": f"{h}x{w}", "embed_per_s": 64 / ew,
           "embed_cpu_s_per_1k": 1000 * ec / 64}
    gallery = np.resize(trunk, (972, *trunk.shape[1:]))  # CUHK01-sized gallery
    query = trunk[:rows]

    def score() -> None:
        for _, block in pairs.iter_pair_distances(model, variables, query, gallery, mesh,
                                                  pair_block):
            np.asarray(block)

    pw, pc = _timed(score)
    n_pairs = rows * len(gallery)
    out.update(pairs_per_s=n_pairs / pw, pairs_cpu_s_per_1k=1000 * pc / n_pairs)
    naive = jax.jit(lambda v, a, b: model.apply(v, jnp.concatenate([a, b]),
                                                jnp.arange(a.shape[0]),
                                                jnp.arange(a.shape[0], 2 * a.shape[0]),
                                                )["pair_distance"])
    nw, _ = _timed(lambda: naive(variables, x[:32], x[32:]).block_until_ready(), 2)
    out["naive_pairs_per_s"] = 32 / nw
    for size, (nq, ng) in SIZES.items():
        seconds = (nq + ng) / out["embed_per_s"] + nq * ng / out["pairs_per_s"]
        measured = False
        if full and size.startswith("cuhk01"):
            t0 = time.perf_counter()
            g = np.resize(trunk, (ng, *trunk.shape[1:]))
            q = np.resize(trunk, (nq, *trunk.shape[1:]))
            for _, block in pairs.iter_pair_distances(model, variables, q, g, mesh, pair_block):
                np.asarray(block)
            seconds = (nq + ng) / out["embed_per_s"] + time.perf_counter() - t0
            measured = True
        out[f"{size}_seconds"] = seconds
        out[f"{size}_measured"] = measured
    return out


def main() -> None:
    """Runs the benchmark, prints the table, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--rows", type=int, default=16, help="query rows timed per model")
    parser.add_argument("--pair_block", type=int, default=256)
    parser.add_argument("--full", action="store_true", help="score all CUHK01 pairs too")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = [bench(m, args.rows, args.pair_block, args.full) for m in args.models]
    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform}; load {load:.2f}")
    head = ("model", "embed/s", "pairs/s", "naive pairs/s", "CPU-s/1k pairs", "CUHK01 972^2",
            "CUHK01 486^2", "Market")
    print(" | ".join(head))
    def t(r: dict, size: str) -> str:
        s = r[f"{size}_seconds"]
        tag = "" if r[f"{size}_measured"] else "*"
        return f"{s / 60:.1f} min{tag}" if s < 7200 else f"{s / 3600:.1f} h{tag}"

    for r in results:
        print(" | ".join([r["model"], f"{r['embed_per_s']:.0f}", f"{r['pairs_per_s']:.0f}",
                          f"{r['naive_pairs_per_s']:.0f}", f"{r['pairs_cpu_s_per_1k']:.2f}",
                          t(r, "cuhk01"), t(r, "cuhk01_single_shot"), t(r, "market1501")]))
    print("* extrapolated from the measured rates")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump({"load_1min": load, "devices": jax.device_count(),
                   "platform": jax.devices()[0].platform, "results": results}, f, indent=1)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
