"""Images/s of the jitted BoT train step (forward, backward, optimizer update, augmentation).

Cases: BoT ResNet-50 at 256x128, batch 64 (16 ids x 4), float32 and bfloat16 compute, and
ResNet-18 at the same size. Random uint8 images and labels; the step is exactly the one
`reid_jax.main` runs. Prints a table and writes JSON.

  python benchmarks/train_throughput.py [--steps 5] [--out benchmarks/results/train_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from experiments import bot
from reid_jax import reporting, sharding
from reid_jax.train import supervised

CASES = [
    ("BoT ResNet-50", "resnet50", "float32"),
    ("BoT ResNet-50", "resnet50", "bfloat16"),
    ("BoT ResNet-18", "resnet18", "float32"),
]


def bench(backbone: str, dtype: str, steps: int, batch: int, num_classes: int = 751) -> dict:
    config = bot.get_config("market1501")
    config.model.backbone = backbone
    config.model.dtype = dtype
    mesh = sharding.make_mesh(0)
    model, state, tx, lr_fn = supervised.create_state(config, num_classes, 100, mesh)
    step = supervised.make_train_step(model, tx, lr_fn, config, mesh)
    rng = np.random.default_rng(0)
    p, k = config.data.p, batch // config.data.p
    host = {
        "image": rng.integers(0, 256, (batch, config.data.height, config.data.width, 3), dtype=np.uint8),
        "label": np.repeat(rng.choice(num_classes, p, replace=False), k).astype(np.int32),
    }
    data = sharding.to_global(host, mesh)
    key = jax.random.key(0)
    t0 = time.perf_counter()
    state, metrics = step(state, data, key)
    jax.block_until_ready(metrics["loss"])
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, data, key)
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
