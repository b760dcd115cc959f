r"""Cost of one meta-learning iteration relative to one plain supervised step.

Same backbone (the synthetic DG config: ResNet-18 at width 32, 128x64 input), the same
number of pictures per iteration (3 source domains x P x K of synthetic_persons/multidomain,
built on first use; the supervised steps take 3P x K of the same pictures), one device:

  supervised      reid_jax.train.supervised step, BatchNorm backbone (CE + triplet)
  supervised_bin  the same step on the BIN backbone
  metabin         reid_jax.train.metabin step: base step + second-order gate meta step
  metabin_base    the MetaBIN trainer with meta.enabled=False (base step only)
  m3l             reid_jax.train.m3l step, second-order (official one-step Adam inner)
  m3l_first       m3l with meta.first_order=True

  python benchmarks/meta_step.py [--p 4 --k 4 --iters 5 --width 32 --height 128]

Prints a table (median milliseconds per iteration, ratio to 'supervised', compile
seconds) and writes benchmarks/results/meta_step.json. Timings on a shared CPU are noisy;
the ratios are the point.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from experiments import bot as bot_config
from experiments import m3l as m3l_config
from experiments import metabin as metabin_config
from reid_jax import sharding
from reid_jax.train import loop


def _time(step, state, batch, iters: int) -> tuple[float, float]:
    rng = jax.random.key(0)
    t0 = time.perf_counter()
    state, metrics = step(state, batch, rng)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        state, metrics = step(state, batch, rng)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000, compile_s


def _configure(c, args):
    c.data.p, c.data.k = args.p, args.k
    c.model.width = args.width
    c.data.height, c.data.width = args.height, args.height // 2
    c.num_devices = 1
    return c


def main() -> None:
    """Times every variant and writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=int, default=4)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--only", default="", help="comma-separated subset of the variants")
    args = parser.parse_args()
    d = 3
    results = {}

    def build(c):
        trainer, ctx = loop.build(c)
        state = trainer.start(trainer.state) if trainer.start else trainer.state
        state, batches = loop.host_batches(trainer, c, state, 0, 1)
        return trainer.train_step, state, sharding.to_global(batches[0], ctx.mesh)

    def sup(norm: str):
        c = _configure(bot_config.get_config("synthetic"), args)
        c.data.dataset = "synthetic_persons/multidomain"
        c.data.train = metabin_config.SYNTHETIC_SOURCES
        c.data.p = d * args.p  # the same number of pictures as the meta-learners' batch
        c.model.norm = norm
        return build(c)

    def mbin(enabled: bool):
        c = _configure(metabin_config.get_config("synthetic"), args)
        c.meta.enabled = enabled
        return build(c)

    def m3(first_order: bool):
        c = _configure(m3l_config.get_config("synthetic"), args)
        c.meta.first_order = first_order
        return build(c)

    variants = {
        "supervised": lambda: sup("bn"),
        "supervised_bin": lambda: sup("bin"),
        "metabin_base": lambda: mbin(False),
        "metabin": lambda: mbin(True),
        "m3l_first": lambda: m3(True),
        "m3l": lambda: m3(False),
    }
    chosen = args.only.split(",") if args.only else list(variants)
    for name in chosen:
        step, state, batch = variants[name]()
        ms, compile_s = _time(step, state, batch, args.iters)
        results[name] = {"ms": ms, "compile_s": compile_s}
        print(f"{name}: {ms:.0f} ms (compile {compile_s:.0f} s)", flush=True)

    base = results.get("supervised", {}).get("ms")
    print(f"\nbatch {d} domains x {args.p} x {args.k} = {d * args.p * args.k} images "
          f"{args.height}x{args.height // 2}, ResNet-18 width {args.width}, {jax.devices()[0].platform}")
    print(f"{'variant':16s} {'ms/iter':>9s} {'x supervised':>13s} {'compile s':>10s}")
    for name, r in results.items():
        ratio = f"{r['ms'] / base:13.2f}" if base else f"{'-':>13s}"
        print(f"{name:16s} {r['ms']:9.0f} {ratio} {r['compile_s']:10.0f}")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "meta_step.json"), "w") as f:
        json.dump({"args": vars(args), "device": str(jax.devices()[0]), "results": results}, f,
                  indent=1)


if __name__ == "__main__":
    main()
