"""Throughput of the jitted BoT train step on whatever device JAX has: images/s, step
time, peak memory and model FLOPs utilisation.

Cases: BoT ResNet-50 at 256x128 (the published recipe's network), float32 and bfloat16
compute, at batch 64 (16 ids x 4) and 256 (64 x 4), and ResNet-18 at the same size.
The step is exactly the one ``reid_jax.main`` runs (``loop.build``), on the built-in
synthetic persons (built on first use). It runs unchanged on CPU, GPU and TPU.

- FLOPs per step: XLA's cost analysis of the compiled step (forward, backward,
  optimizer, augmentation), so MFU = FLOPs per step / step time / the device's peak.
- Peak: ``--peak_tflops`` or the table below for the device kind (dense, no sparsity;
  bfloat16 for the bfloat16 rows, float32 -- TF32 off -- for the float32 rows); CPUs have
  no entry (MFU left empty unless ``--peak_tflops`` is given).
- Peak memory: the device's ``peak_bytes_in_use`` where the runtime reports it (GPU,
  TPU), else the compiled step's temporary + argument + output bytes from XLA's memory
  analysis.

  python benchmarks/train_throughput.py [--steps 5] [--cases r50-f32-64,r50-bf16-64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax

from experiments import bot
from reid_jax import reporting, sharding
from reid_jax.train import loop

# name: (backbone, dtype, batch)
CASES = {
    "r50-f32-64": ("resnet50", "float32", 64),
    "r50-bf16-64": ("resnet50", "bfloat16", 64),
    "r50-f32-256": ("resnet50", "float32", 256),
    "r50-bf16-256": ("resnet50", "bfloat16", 256),
    "r18-f32-64": ("resnet18", "float32", 64),
}
# Dense peak TFLOP/s per device from the vendors' data sheets: (float32, bfloat16).
PEAK_TFLOPS = {
    "NVIDIA H200": (67.0, 989.0),
    "NVIDIA H100 80GB HBM3": (67.0, 989.0),
    "NVIDIA A100-SXM4-80GB": (19.5, 312.0),
    "NVIDIA A100-SXM4-40GB": (19.5, 312.0),
    "TPU v4": (None, 275.0),
    "TPU v5 lite": (None, 197.0),
    "TPU v5p": (None, 459.0),
}


def _peak(kind: str, dtype: str, override: float) -> float | None:
    if override:
        return override
    for name, (f32, bf16) in PEAK_TFLOPS.items():
        if kind.startswith(name):
            return f32 if dtype == "float32" else bf16
    return None


def bench(backbone: str, dtype: str, batch: int, steps: int) -> dict:
    """Times the step of bot.py:market1501's recipe (on the built-in synthetic persons)."""
    config = bot.get_config("market1501")
    config.data.dataset = "synthetic_persons/default"  # built on first use, no download
    config.model.backbone = backbone
    config.model.dtype = dtype
    config.data.k = batch // config.data.p
    trainer, ctx = loop.build(config)
    state, batches = loop.host_batches(trainer, config, trainer.state, 0, 1)
    data = sharding.to_global(batches[0], ctx.mesh)
    key = jax.random.key(0)
    compiled = trainer.train_step.lower(state, data, key).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    mem = compiled.memory_analysis()
    t0 = time.perf_counter()
    state, metrics = trainer.train_step(state, data, key)
    jax.block_until_ready(metrics["loss"])
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, metrics = trainer.train_step(state, data, key)
    jax.block_until_ready(metrics["loss"])
    dt = (time.perf_counter() - t0) / steps
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        peak, how = stats["peak_bytes_in_use"], "device peak"
    elif mem is not None:
        peak = (mem.temp_size_in_bytes + mem.argument_size_in_bytes
                + mem.output_size_in_bytes)
        how = "XLA memory analysis"
    else:
        peak, how = 0, "n/a"
    return {"step_s": dt, "images_per_s": batch / dt, "first_step_s": first_s,
            "flops_per_step": flops, "peak_bytes": peak, "memory": how,
            "loss": float(metrics["loss"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--cases", default="r50-f32-64,r50-bf16-64,r50-f32-256,r50-bf16-256,"
                    "r18-f32-64", help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--peak_tflops", type=float, default=0.0,
                    help="the device's peak TFLOP/s, for devices the table lacks")
    ap.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = ap.parse_args()
    dev = jax.devices()[0]
    rows = []
    for name in args.cases.split(","):
        backbone, dtype, batch = CASES[name]
        r = bench(backbone, dtype, batch, args.steps)
        peak = _peak(dev.device_kind, dtype, args.peak_tflops)
        achieved = r["flops_per_step"] / r["step_s"] / 1e12
        rows.append({"case": name, "model": f"BoT {backbone}", "dtype": dtype,
                     "input": "256x128", "batch": batch, "images/s": r["images_per_s"],
                     "step s": r["step_s"], "compile+1st s": r["first_step_s"],
                     "GFLOP/step": r["flops_per_step"] / 1e9, "TFLOP/s": achieved,
                     "MFU %": 100 * achieved / peak if peak else "",
                     "peak GiB": r["peak_bytes"] / 2**30, "memory": r["memory"]})
        print(f"{name}: {r['images_per_s']:.1f} images/s", flush=True)
    print(f"\ndevice: {dev.platform} {dev.device_kind} x{len(jax.devices())}, "
          f"host {platform.node()}")
    print(reporting.format_table(rows, ["case", "dtype", "batch", "images/s", "step s",
                                        "compile+1st s", "GFLOP/step", "TFLOP/s", "MFU %",
                                        "peak GiB", "memory"]))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"device": f"{dev.platform} {dev.device_kind}", "num_devices": len(jax.devices()),
                   "jax": jax.__version__, "steps": args.steps, "results": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
