"""Host input pipeline: decode + resize pictures per core, and the loader's batches per second.

Per picture, on one thread (so the figure is per core): TFDS's image-feature decoder
(which reid_jax used before; TFDS uses OpenCV when it is installed and PIL otherwise,
with the "OpenCV is not installed" warning), ``pipeline.load_image`` (the stored bytes
decoded by PIL, what the loader runs now), PIL by hand, and OpenCV by hand when it is
installed (``pip install opencv-python-headless``); each decodes the stored bytes and
resizes to the training size with bilinear filtering. Then ``pipeline.train_loader``,
the loader the run loop uses, with 1 and 2 threads, in P x K batches of 64.

The last column compares with the train step: the CPU-seconds a core spends preparing
one batch, as a share of the step's time at ``--step_images_per_s`` (the reid_jax CPU
recipe, ResNet-18/w32 at 128x64: see benchmarks/train_step_vs_torch.py). The target is
<= 10 %.

  python benchmarks/input_pipeline.py [--dataset cuhk01/p486_s0] [--pictures 400]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from data_builders import registry
from reid_jax import reporting
from reid_jax.data import pipeline, sources


def _per_core(fn, items: list, repeats: int = 3) -> float:  # noqa: ANN001
    """Pictures per second of ``fn`` on one thread (best of ``repeats`` passes)."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.process_time()
        for it in items:
            fn(it)
        best = max(best, len(items) / max(time.process_time() - t0, 1e-9))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="", help="built dataset (default: CUHK01 if built, "
                    "else the synthetic persons)")
    ap.add_argument("--pictures", type=int, default=400)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--step_images_per_s", type=float, default=195.0)
    ap.add_argument("--out", default="benchmarks/results/input_pipeline.json")
    args = ap.parse_args()
    name = args.dataset
    if not name:
        try:
            sources.open_data([("cuhk01/p486_s0", "train")])
            name = "cuhk01/p486_s0"
        except Exception:  # noqa: BLE001 - not built here: the built-in data
            name = "synthetic_persons/default"
    data = sources.open_data([(name, "train")])
    n = min(args.pictures, len(data))
    builder = registry.get_builder(name, data_dir=None)
    raw = builder.as_data_source("train", decoders={"image": tfds.decode.SkipDecoding()})
    encoded = [raw[i]["image"] for i in range(n)]
    h, w = args.height, args.width
    first = data.image(0)
    rows = []

    def row(method: str, per_core: float) -> None:
        ms_per_batch = 64 / per_core * 1e3
        step_ms = 64 / args.step_images_per_s * 1e3
        rows.append({"method": method, "images/s per core": per_core,
                     "ms CPU per batch of 64": ms_per_batch,
                     "% of a step's wall time": 100 * ms_per_batch / step_ms})

    decoded = builder.as_data_source("train")  # TFDS's image feature decodes

    def tfds_path(i: int) -> np.ndarray:
        img = decoded[i]["image"]
        return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))

    row("TFDS image feature decode + PIL resize (reid_jax before)",
        _per_core(tfds_path, list(range(n))))
    row("pipeline.load_image (PIL decode + resize)",
        _per_core(lambda i: pipeline.load_image(data, i, h, w), list(range(n))))
    row("PIL decode + resize",
        _per_core(lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize(
            (w, h), Image.BILINEAR)), encoded))
    row("PIL decode only", _per_core(lambda b: np.asarray(Image.open(io.BytesIO(b)).convert(
        "RGB")), encoded))
    try:
        import cv2

        cv2.setNumThreads(1)

        def cv(b: bytes) -> np.ndarray:
            img = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
            return cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (w, h),
                              interpolation=cv2.INTER_LINEAR)

        row("OpenCV decode + resize", _per_core(cv, encoded))
    except ImportError:
        rows.append({"method": "OpenCV: not installed"})
    labels = data.labels
    for threads in (1, 2):
        batch_rows = np.stack([np.random.default_rng(b).choice(len(labels), 64)
                               for b in range(args.batches)])
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in pipeline.train_loader(data, batch_rows, h, w, threads):
            pass
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"method": f"train_loader, {threads} thread(s)",
                     "images/s per core": 64 * args.batches / cpu,
                     "ms CPU per batch of 64": cpu / args.batches * 1e3,
                     "% of a step's wall time": 100 * cpu / args.batches
                     / (64 / args.step_images_per_s),
                     "loader images/s (wall)": 64 * args.batches / wall})
    cols = ["method", "images/s per core", "ms CPU per batch of 64", "% of a step's wall time",
            "loader images/s (wall)"]
    print(f"{name}: {n} pictures, stored {first.shape[1]}x{first.shape[0]}, resized to "
          f"{w}x{h}; step at {args.step_images_per_s:.0f} images/s")
    print(reporting.format_table(rows, cols))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"dataset": name, "pictures": n, "size": [h, w], "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
