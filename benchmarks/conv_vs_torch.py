"""Where a CPU train step loses to PyTorch: every convolution of a ResNet, per layer.

For each distinct convolution of the network (its shape at batch 64), the milliseconds of
the forward, the input gradient (dx) and the kernel gradient (dw), in three workers:
XLA:CPU with YNNPACK convolutions (jaxlib 0.10's default), XLA:CPU with Eigen's
(``reid_jax``'s default, ``reid_jax.CPU_FLAG``), and PyTorch channels_last (oneDNN).
The totals count each layer as often as the network has it; the stem's dx is left out
of them (no step computes the gradient of the input pictures).

  python benchmarks/conv_vs_torch.py [--net r18|r50] [--reps 10]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time

N = 64
# (name, H, W, in, out, kernel, stride, how many in the network)
NETS = {
    "r18": [  # ResNet-18, width 32, last stride 1, 128x64
        ("stem 7x7/2", 128, 64, 3, 32, 7, 2, 1),
        ("layer1 3x3", 32, 16, 32, 32, 3, 1, 4),
        ("layer2 3x3/2", 32, 16, 32, 64, 3, 2, 1), ("layer2 3x3", 16, 8, 64, 64, 3, 1, 3),
        ("layer3 3x3/2", 16, 8, 64, 128, 3, 2, 1), ("layer3 3x3", 8, 4, 128, 128, 3, 1, 3),
        ("layer4 3x3 in", 8, 4, 128, 256, 3, 1, 1), ("layer4 3x3", 8, 4, 256, 256, 3, 1, 3),
    ],
    "r50": [  # ResNet-50, last stride 1, 256x128 (3x3 convs and the stem)
        ("stem 7x7/2", 256, 128, 3, 64, 7, 2, 1),
        ("layer1 3x3", 64, 32, 64, 64, 3, 1, 3),
        ("layer2 3x3/2", 64, 32, 128, 128, 3, 2, 1), ("layer2 3x3", 32, 16, 128, 128, 3, 1, 3),
        ("layer3 3x3/2", 32, 16, 256, 256, 3, 2, 1), ("layer3 3x3", 16, 8, 256, 256, 3, 1, 5),
        ("layer4 3x3", 16, 8, 512, 512, 3, 1, 3),
        ("layer1 1x1", 64, 32, 64, 256, 1, 1, 6), ("layer4 1x1", 16, 8, 512, 2048, 1, 1, 6),
    ],
}


def _time(fn, reps: int, sync) -> float:  # noqa: ANN001
    sync(fn())
    sync(fn())
    t0 = time.perf_counter()
    for _ in range(reps):
        out = fn()
    sync(out)
    return (time.perf_counter() - t0) / reps * 1e3


def _jax(net: str, reps: int) -> list[list[float]]:
    import jax
    import jax.numpy as jnp
    from jax import lax

    rows = []
    for _, h, w, ci, co, k, s, _ in NETS[net]:
        x = jax.random.normal(jax.random.key(0), (N, h, w, ci))
        kern = jax.random.normal(jax.random.key(1), (k, k, ci, co)) * 0.05
        p = k // 2

        def conv(x, kern, s=s, p=p):  # noqa: ANN001, ANN202
            return lax.conv_general_dilated(x, kern, (s, s), ((p, p), (p, p)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

        g = jnp.ones_like(conv(x, kern))
        fwd = jax.jit(conv)
        dx = jax.jit(lambda x, kern, g, conv=conv: jax.vjp(lambda v: conv(v, kern), x)[1](g))
        dw = jax.jit(lambda x, kern, g, conv=conv: jax.vjp(lambda v: conv(x, v), kern)[1](g))
        sync = jax.block_until_ready
        calls = [functools.partial(fwd, x, kern)] + [functools.partial(f, x, kern, g)
                                                      for f in (dx, dw)]
        rows.append([_time(call, reps, sync) for call in calls])  # run before the next layer
    return rows


def _torch(net: str, reps: int) -> list[list[float]]:
    import torch

    rows = []
    for _, h, w, ci, co, k, s, _ in NETS[net]:
        cl = torch.channels_last
        x = torch.randn(N, ci, h, w).contiguous(memory_format=cl).requires_grad_()
        conv = torch.nn.Conv2d(ci, co, k, s, k // 2, bias=False).to(memory_format=cl)
        g = torch.ones_like(conv(x))

        def fwd(conv=conv, x=x):  # noqa: ANN001, ANN202
            with torch.no_grad():
                return conv(x)

        def dx(conv=conv, x=x, g=g):  # noqa: ANN001, ANN202
            return torch.autograd.grad(conv(x), x, g)

        def dw(conv=conv, x=x, g=g):  # noqa: ANN001, ANN202
            return torch.autograd.grad(conv(x), conv.weight, g)

        t_f = _time(fwd, reps, lambda _: None)
        rows.append([t_f, _time(dx, reps, lambda _: None) - t_f,
                     _time(dw, reps, lambda _: None) - t_f])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="r18", choices=sorted(NETS))
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.worker:
        rows = _jax(args.net, args.reps) if args.worker == "jax" else _torch(args.net, args.reps)
        print(json.dumps(rows))
        return
    import reid_jax

    ynn_flag = reid_jax.CPU_FLAG.split("=")[0] + "="  # YNNPACK's default list
    runs = {}
    for name, worker, flags in (("XLA YNNPACK", "jax", f"{ynn_flag}+individual_convolution"),
                                ("XLA Eigen", "jax", reid_jax.CPU_FLAG),
                                ("torch cl", "torch", "")):
        env = dict(os.environ, XLA_FLAGS=flags)
        out = subprocess.run([sys.executable, __file__, "--worker", worker, "--net", args.net,
                              "--reps", str(args.reps)], env=env, check=True, text=True,
                             capture_output=True).stdout
        runs[name] = json.loads(out.strip().splitlines()[-1])
    from reid_jax import reporting

    table, totals = [], {k: [0.0, 0.0, 0.0] for k in runs}
    for i, (layer, *_, count) in enumerate(NETS[args.net]):
        row = {"layer": layer, "x": count}
        for name, vals in runs.items():
            for j, part in enumerate(("fwd", "dx", "dw")):
                row[f"{name} {part}"] = vals[i][j]
                if not (i == 0 and part == "dx"):
                    totals[name][j] += count * vals[i][j]
        table.append(row)
    table.append({"layer": "total (ms/step)", "x": "",
                  **{f"{n} {p}": totals[n][j] for n in runs for j, p in
                     enumerate(("fwd", "dx", "dw"))}})
    cols = ["layer", "x"] + [f"{n} {p}" for n in runs for p in ("fwd", "dx", "dw")]
    print(f"{args.net}, batch {N}, ms per call (mean of {args.reps} calls after 2):")
    print(reporting.format_table(table, cols))
    for n in runs:
        print(f"{n}: all convolutions {sum(totals[n]):.1f} ms per step")
    out = args.out or f"benchmarks/results/conv_vs_torch_{args.net}.json"
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"net": args.net, "batch": N, "rows": table,
                   "totals_ms": {n: sum(t) for n, t in totals.items()}}, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
