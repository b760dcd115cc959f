"""reid_jax's BoT train step against the same step written in PyTorch, on this machine.

The same network (ResNet, last stride 1, BNNeck with a frozen bias, bias-free classifier),
the same loss (cross-entropy with label smoothing 0.1 + batch-hard triplet, margin 0.3, on
the pooled feature) and the same optimizer (Adam, L2 weight decay 5e-4 added to the
gradient) on a P x K batch of uint8 pictures. reid_jax runs the jitted step that
``reid_jax.main`` runs (``experiments/bot.py``'s recipe, built by ``loop.build``); the
PyTorch step is written below for this benchmark (PyTorch is the optional ``torch``
extra: ``pip install -e '.[torch]'``).

Each (framework, variant) lives in its own worker process, built and warmed up once; the
parent then asks the workers in turn for ``--steps`` timed steps, ``--repeats`` rounds, the
order reversed every other round, so that both sides see the same machine state.
Reported: median and min-max images/s of the rounds, CPU seconds per call, and ``x torch``,
the ratio of the medians to PyTorch channels_last with augmentation (train step) or to
the same PyTorch variant (``--embed``: evaluation features of a batch of
``eval.batch_size`` pictures, with and without flip averaging, inference mode).

Variants: ``aug`` (reid_jax: flip, pad 5/10 + crop and random erasing run inside the
step; PyTorch: the same three on the batch tensor, as a data loader would have done on
the pictures), ``noaug`` (normalisation only), and PyTorch's two memory formats (NCHW,
channels_last). ``--dtypes bfloat16`` adds mixed precision (reid_jax ``model.dtype``,
PyTorch ``torch.autocast('cpu', torch.bfloat16)``) where the CPU has bfloat16 units.

  python benchmarks/train_step_vs_torch.py                       # both cases, float32
  python benchmarks/train_step_vs_torch.py --cases r18 --repeats 7 --steps 10
  python benchmarks/train_step_vs_torch.py --dtypes float32,bfloat16
  python benchmarks/train_step_vs_torch.py --cases r18 --embed

Cases: r18 = ``bot.py:cuhk01``'s CPU recipe (ResNet-18 at width 32, 128x64, batch 64 =
16 x 4); r50 = the published recipe's network (ResNet-50, 256x128, batch 64).
The pictures come from the built-in synthetic persons (built on first use); the
classifier has as many outputs as its training identities in both frameworks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

CASES = {
    # name: (bot.py argument, backbone, width, height, width_px, p, k, pad)
    "r18": dict(config="cuhk01", backbone="resnet18", width=32, size=(128, 64), p=16, k=4),
    "r50": dict(config="market1501", backbone="resnet50", width=64, size=(256, 128), p=16, k=4),
}
LABEL_SMOOTHING = 0.1
TRIPLET_MARGIN = 0.3
WEIGHT_DECAY = 5e-4


# --------------------------------------------------------------------------- reid_jax worker


def _jax_worker(case: dict, variant: str, dtype: str) -> tuple:
    """Builds reid_jax's trainer for the case; returns (run(n) -> seconds, info)."""
    import jax

    from experiments import bot, common
    from reid_jax import sharding
    from reid_jax.train import loop

    c = bot.get_config(case["config"])
    c.data.dataset = "synthetic_persons/default"
    c.model.backbone = case["backbone"]
    c.model.width = case["width"]
    c.data.height, c.data.width = case["size"]
    c.data.p, c.data.k = case["p"], case["k"]
    c.model.dtype = dtype
    if variant == "noaug":
        c.aug.flip, c.aug.pad, c.aug.erasing = 0.0, 0, 0.0
        common.reset(c, "aug.erasing_aspect", "aug.erasing_tries", "aug.erasing_fill")
    trainer, ctx = loop.build(c)
    state, batches = loop.host_batches(trainer, c, trainer.state, 0, 2)
    info = {"num_classes": trainer.model.num_classes, "aug": c.aug.to_dict(),
            "jax": jax.__version__, "backend": jax.default_backend(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "eval_batch": c.eval.batch_size}
    if variant.startswith("embed"):
        import numpy as np

        from reid_jax.evaluation import embed

        fn = embed.make_embed_fn(trainer.model, ctx.mesh, "neck_features", variant == "embed_flip")
        variables = trainer.eval_variables(state)
        h, w = case["size"]
        images = sharding.to_global({"image": np.random.default_rng(0).integers(
            0, 256, (c.eval.batch_size, h, w, 3), dtype=np.uint8)}, ctx.mesh)["image"]

        def run_embed(n: int) -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                out = fn(variables, images)
            jax.block_until_ready(out)
            return time.perf_counter() - t0

        return run_embed, info
    data = [sharding.to_global(b, ctx.mesh) for b in batches]
    key = jax.random.key(0)
    holder = {"state": state}

    def run(n: int) -> float:
        st = holder["state"]
        t0 = time.perf_counter()
        for i in range(n):
            st, metrics = trainer.train_step(st, data[i % 2], key)
        jax.block_until_ready((st, metrics))
        holder["state"] = st
        return time.perf_counter() - t0

    return run, info


# ---------------------------------------------------------------------------- PyTorch worker


def _torch_model(case: dict, num_classes: int, stem_relu: bool):  # noqa: ANN202
    import torch
    from torch import nn

    class Basic(nn.Module):
        expansion = 1

        def __init__(self, cin: int, c: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            self.down = None
            if stride != 1 or cin != c:
                self.down = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False),
                                          nn.BatchNorm2d(c))

        def forward(self, x):  # noqa: ANN202
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    class Bottle(nn.Module):
        expansion = 4

        def __init__(self, cin: int, c: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            self.conv3 = nn.Conv2d(c, 4 * c, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(4 * c)
            self.down = None
            if stride != 1 or cin != 4 * c:
                self.down = nn.Sequential(nn.Conv2d(cin, 4 * c, 1, stride, bias=False),
                                          nn.BatchNorm2d(4 * c))

        def forward(self, x):  # noqa: ANN202
            y = torch.relu(self.bn1(self.conv1(x)))
            y = torch.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    sizes, block = {"resnet18": ([2, 2, 2, 2], Basic), "resnet50": ([3, 4, 6, 3], Bottle)}[
        case["backbone"]]
    w = case["width"]

    class BoT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w),
                                      *([nn.ReLU()] if stem_relu else []),
                                      nn.MaxPool2d(3, 2, 1))
            layers, cin = [], w
            for stage, n in enumerate(sizes):
                stride = 1 if stage in (0, 3) else 2  # last stride 1
                for i in range(n):
                    layers.append(block(cin, w * 2**stage, stride if i == 0 else 1))
                    cin = w * 2**stage * block.expansion
            self.layers = nn.Sequential(*layers)
            self.neck = nn.BatchNorm1d(cin)
            self.neck.bias.requires_grad_(False)
            self.classifier = nn.Linear(cin, num_classes, bias=False)

        def forward(self, x):  # noqa: ANN202
            f = self.layers(self.stem(x)).mean((2, 3))
            return f, self.classifier(self.neck(f))

        def embed(self, x):  # noqa: ANN202
            return self.neck(self.layers(self.stem(x)).mean((2, 3)))

    return BoT()


def _torch_augment(x, pad: int, gen):  # noqa: ANN001, ANN202
    """Flip, zero pad + random crop and random erasing (torchvision's: log-uniform aspect,
    10 tries, mean-pixel fill) on a normalised [N, 3, H, W] batch."""
    import math

    import torch

    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if pad:
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=0.0)
        offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen).tolist()
        x = torch.stack([xp[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offs)])
    x = x.clone()
    for i in range(n):
        if torch.rand(1, generator=gen).item() >= 0.5:
            continue
        for _ in range(10):
            area = h * w * (0.02 + 0.38 * torch.rand(1, generator=gen).item())
            r = math.exp(math.log(0.3) + 2 * math.log(1 / 0.3) * torch.rand(1, generator=gen).item())
            eh, ew = round(math.sqrt(area * r)), round(math.sqrt(area / r))
            if 0 < eh < h and 0 < ew < w:
                y0 = int(torch.randint(0, h - eh + 1, (1,), generator=gen))
                x0 = int(torch.randint(0, w - ew + 1, (1,), generator=gen))
                x[i, :, y0:y0 + eh, x0:x0 + ew] = 0.0
                break
    return x


def _torch_worker(case: dict, variant: str, dtype: str, num_classes: int, pad: int,
                  stem_relu: bool, eval_batch: int) -> tuple:
    """The same step in PyTorch; variant 'aug'/'noaug' + '_cl' for channels_last, or
    'embed'/'embed_flip' (evaluation features, channels_last, inference mode)."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    channels_last = variant.endswith("_cl") or variant.startswith("embed")
    aug = variant.startswith("aug")
    model = _torch_model(case, num_classes, stem_relu)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.is_available()}
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h, w = case["size"]
    if variant.startswith("embed"):
        model.eval()
        u8 = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (eval_batch, h, w, 3),
                                                                dtype=np.uint8))

        def run_embed(n: int) -> float:
            t0 = time.perf_counter()
            with torch.inference_mode(), torch.autocast(
                    "cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
                for _ in range(n):
                    x = ((u8.permute(0, 3, 1, 2).float() / 255.0 - mean) / std).contiguous(
                        memory_format=fmt)
                    f = model.embed(x)
                    if variant == "embed_flip":
                        f = f + model.embed(x.flip(3))
            return time.perf_counter() - t0

        return run_embed, info
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1 and p.requires_grad]
    opt = torch.optim.Adam([{"params": decay, "weight_decay": WEIGHT_DECAY},
                            {"params": other, "weight_decay": 0.0}], lr=3.5e-4)
    p, k = case["p"], case["k"]
    rng = np.random.default_rng(0)
    images = [torch.from_numpy(rng.integers(0, 256, (p * k, h, w, 3), dtype=np.uint8))
              for _ in range(2)]
    labels = torch.arange(p).repeat_interleave(k) % num_classes
    gen = torch.Generator().manual_seed(0)
    same = labels[:, None] == labels[None, :]
    ce = torch.nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)

    def step(u8) -> None:  # noqa: ANN001
        x = (u8.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        if aug:
            x = _torch_augment(x, pad, gen)
        x = x.contiguous(memory_format=fmt)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            f, logits = model(x)
        f, logits = f.float(), logits.float()
        sq = (f * f).sum(1)
        d = (sq[:, None] + sq[None, :] - 2 * f @ f.T).clamp_min(1e-12).sqrt()
        hardest_pos = torch.where(same, d, torch.zeros_like(d)).amax(1)
        hardest_neg = torch.where(same, torch.full_like(d, float("inf")), d).amin(1)
        trip = torch.relu(hardest_pos - hardest_neg + TRIPLET_MARGIN).mean()
        loss = ce(logits, labels) + trip
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            step(images[i % 2])
        return time.perf_counter() - t0

    return run, info


# ------------------------------------------------------------------------------ worker loop


def worker_main(args: argparse.Namespace) -> None:
    """Builds one (framework, variant), warms it up, then serves 'run N' requests."""
    case = CASES[args.case]
    if args.framework == "jax":
        run, info = _jax_worker(case, args.variant, args.dtype)
    else:
        run, info = _torch_worker(case, args.variant, args.dtype, args.num_classes, args.pad,
                                  args.stem_relu, args.eval_batch)
    t_first = run(1)  # compile / first-touch
    run(args.warmup)
    print(json.dumps({"ready": True, "first_step_s": t_first, **info}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        n = int(cmd[1])
        c0 = time.process_time()
        wall = run(n)
        print(json.dumps({"wall_s": wall, "cpu_s": time.process_time() - c0, "steps": n}),
              flush=True)


class Worker:
    """One worker process, driven line by line over its stdin/stdout."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        env = dict(os.environ)
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", *argv],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.info = self._read()

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.name} died (see its stderr above)")
            if line.startswith("{"):
                return json.loads(line)

    def time(self, steps: int) -> dict:
        self.proc.stdin.write(f"run {steps}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


def _summary(rounds: list[dict], batch: int) -> dict:
    ips = [batch * r["steps"] / r["wall_s"] for r in rounds]
    return {"images_per_s": statistics.median(ips), "min": min(ips), "max": max(ips),
            "cpu_s_per_step": statistics.median(r["cpu_s"] / r["steps"] for r in rounds),
            "rounds": ips}


def _alternate(workers: list[Worker], steps: int, repeats: int, images: int,
               label: str) -> dict[str, dict]:
    """``repeats`` rounds of ``steps`` calls per worker, the order reversed every other
    round; returns each worker's summary."""
    rounds: dict[str, list[dict]] = {w.name: [] for w in workers}
    for r in range(repeats):
        for w in workers if r % 2 == 0 else workers[::-1]:
            rounds[w.name].append(w.time(steps))
        print(f"  {label} round {r + 1}/{repeats}: " + ", ".join(
            f"{k} {images * v[-1]['steps'] / v[-1]['wall_s']:.0f}" for k, v in rounds.items()),
            flush=True)
    for w in workers:
        w.close()
    return {k: _summary(v, images) for k, v in rounds.items()}


def bench_case(name: str, args: argparse.Namespace, infos: dict) -> list[dict]:
    """Every variant of one case, alternated; returns the table rows."""
    from experiments import bot

    case = CASES[name]
    batch = case["p"] * case["k"]
    stem_relu = ["--stem_relu"] if bot.get_config(case["config"]).model.stem_relu else []
    rows = []

    def add_rows(workers: list[Worker], summ: dict, ref: str, images: int, what: str) -> None:
        for w in workers:
            s = summ[w.name]
            infos[f"{name} {dtype} {w.name}"] = w.info
            rows.append({"case": name, "dtype": dtype, "what": what, "worker": w.name,
                         "images": images, "images/s": s["images_per_s"],
                         "min-max": f"{s['min']:.0f}-{s['max']:.0f}",
                         "cpu s/call": s["cpu_s_per_step"],
                         "first call s": w.info["first_step_s"],
                         "x torch": s["images_per_s"] / summ[ref]["images_per_s"],
                         "_rounds": s["rounds"]})

    for dtype in args.dtypes.split(","):
        common = ["--case", name, "--dtype", dtype, "--warmup", str(args.warmup)]
        jax_workers = [Worker(f"reid_jax {v}", ["--framework", "jax", "--variant", v, *common])
                       for v in ("aug", "noaug")]
        info = jax_workers[0].info
        torch_args = ["--framework", "torch", "--num_classes", str(info["num_classes"]),
                      "--pad", str(int(info["aug"]["pad"])), "--eval_batch",
                      str(info["eval_batch"]), *stem_relu, *common]
        workers = jax_workers + [Worker(f"torch {v}", ["--variant", v, *torch_args])
                                 for v in ("noaug", "noaug_cl", "aug_cl")]
        summ = _alternate(workers, args.steps, args.repeats, batch, f"{name} {dtype} train")
        add_rows(workers, summ, "torch aug_cl", batch, "train step")
        if not args.embed:
            continue
        workers = [Worker(f"reid_jax {v}", ["--framework", "jax", "--variant", v, *common])
                   for v in ("embed", "embed_flip")]
        workers += [Worker(f"torch {v}", ["--variant", v, *torch_args])
                    for v in ("embed", "embed_flip")]
        summ = _alternate(workers, max(1, args.steps // 2), args.repeats, info["eval_batch"],
                          f"{name} {dtype} embed")
        for v in ("embed", "embed_flip"):
            pair = [w for w in workers if w.name.endswith(" " + v)]
            add_rows(pair, summ, f"torch {v}", info["eval_batch"], "evaluation features")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--framework", choices=("jax", "torch"), help=argparse.SUPPRESS)
    ap.add_argument("--case", default="r18", help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="aug", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    ap.add_argument("--num_classes", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--pad", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--stem_relu", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--eval_batch", type=int, default=256, help=argparse.SUPPRESS)
    ap.add_argument("--cases", default="r18,r50", help="comma-separated: r18, r50")
    ap.add_argument("--dtypes", default="float32", help="float32 and/or bfloat16")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds per worker")
    ap.add_argument("--steps", type=int, default=0, help="steps per round (0: 10 r18, 2 r50)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--embed", action="store_true",
                    help="also time evaluation features (with and without flip averaging)")
    ap.add_argument("--out", default="benchmarks/results/train_step_vs_torch.json")
    args = ap.parse_args()
    if args.worker:
        worker_main(args)
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("error: PyTorch is not installed; pip install -e '.[torch]' (CPU build).")
    from reid_jax import reporting

    rows, infos = [], {}
    for name in args.cases.split(","):
        steps = args.steps or (10 if name == "r18" else 2)
        rows += bench_case(name, argparse.Namespace(**{**vars(args), "steps": steps}), infos)
    cols = ["case", "dtype", "what", "worker", "images", "images/s", "min-max", "cpu s/call",
            "first call s", "x torch"]
    print(f"\nhost {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or ''}")
    print(reporting.format_table(rows, cols))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"host": platform.node(), "cpus": os.cpu_count(), "repeats": args.repeats,
                   "workers": infos, "results": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
