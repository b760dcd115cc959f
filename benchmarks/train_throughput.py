"""Images/s of the jitted BoT train step (forward, backward, optimizer update, augmentation).

Cases: BoT ResNet-50 at 256x128, batch 64 (16 ids x 4), float32 and bfloat16 compute, and
ResNet-18 at the same size. A P x K batch; the step is exactly the one
`reid_jax.main` runs, on the
built-in synthetic persons (built on first use). Prints a table and writes JSON.

  python benchmarks/train_throughput.py [--steps 5] [--out benchmarks/results/train_throughput.json]
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

CASES = [
    ("BoT ResNet-50", "resnet50", "float32"),
    ("BoT ResNet-50", "resnet50", "bfloat16"),
    ("BoT ResNet-18", "resnet18", "float32"),
]


def bench(backbone: str, dtype: str, steps: int, batch: int) -> dict:
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
    t0 = time.perf_counter()
    state, metrics = trainer.train_step(state, data, key)
    jax.block_until_ready(metrics["loss"])
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, metrics = trainer.train_step(state, data, key)
    jax.block_until_ready(metrics["loss"])
    dt = (time.perf_counter() - t0) / steps
    return {"step_s": dt, "images_per_s": batch / dt, "first_step_s": compile_s,
            "loss": float(metrics["loss"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = ap.parse_args()
    dev = jax.devices()[0]
    rows = []
    for name, backbone, dtype in CASES:
        r = bench(backbone, dtype, args.steps, args.batch)
        rows.append({"model": name, "dtype": dtype, "input": "256x128", "batch": args.batch,
                     "images/s": r["images_per_s"], "step s": r["step_s"],
                     "compile+1st s": r["first_step_s"]})
        print(f"{name} {dtype}: {r['images_per_s']:.1f} images/s", flush=True)
    print(f"\ndevice: {dev.platform} {dev.device_kind} x{len(jax.devices())}, host {platform.node()}")
    print(reporting.format_table(rows, ["model", "dtype", "input", "batch", "images/s", "step s", "compile+1st s"]))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"device": f"{dev.platform} {dev.device_kind}", "num_devices": len(jax.devices()),
                   "jax": jax.__version__, "steps": args.steps, "results": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
