"""Images/s of the BoT train step, 1 process x 4 devices vs 2 processes x 2 devices, and
each process's input-pipeline time per step.

Both cases run the same global P x K batches of ``bot.py:synthetic`` (ResNet-18 at half
width, 128x64, built-in synthetic persons) on a 4-device mesh; only the split over
processes differs. Each process decodes only its rows of every batch
(``distributed.process_rows``): with two processes each decodes half, which is the
input-time column. Training is timed after one compiled warm-up step, ``--steps`` steps,
on the global batch; the ``CPU s`` column is the processes' summed user + system time
for the whole run (start-up and compilation included). On CPU the four devices of
either case share the machine's cores, so images/s measures the overhead of the split
(gloo collectives between processes instead of in-process ones), not a speed-up.

  python benchmarks/multiprocess_scaling.py [--steps 5]
  (each case is started through python -m reid_jax.launch; --worker is its inner mode)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"1 process x 4 devices": (1, 4), "2 processes x 2 devices": (2, 2)}


def worker(args: argparse.Namespace) -> None:
    """One process of a case: times its input and the train steps, writes its JSON."""
    from reid_jax import distributed

    distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
    import jax

    from experiments import bot
    from reid_jax import sharding
    from reid_jax.train import loop

    config = bot.get_config("synthetic")
    config.num_devices = 0
    config.train.progress = False
    config.data.num_threads = 1
    trainer, ctx = loop.build(config)
    epoch = trainer.prepare_epoch(trainer.state, 0)
    rows = epoch.batches[: args.steps + 1]
    part = distributed.process_rows(ctx.mesh, rows.shape[1])
    t0 = time.perf_counter()
    batches = list(loop.loader(epoch, config, ctx.mesh, limit=args.steps + 1))
    input_s = (time.perf_counter() - t0) / len(batches)
    state, key = epoch.state, sharding.replicate(jax.random.key(0), ctx.mesh)
    state, m = trainer.train_step(state, sharding.to_global(batches[0], ctx.mesh), key)
    first_loss = float(m["loss"])
    t0 = time.perf_counter()
    for b in batches[1:]:
        state, m = trainer.train_step(state, sharding.to_global(b, ctx.mesh), key)
    jax.block_until_ready(m["loss"])
    step_s = (time.perf_counter() - t0) / args.steps
    use = resource.getrusage(resource.RUSAGE_SELF)
    out = {"process": jax.process_index(), "devices": jax.local_device_count(),
           "global_batch": int(rows.shape[1]), "rows_loaded": int(batches[0]["image"].shape[0]),
           "rows": [part.start, part.stop], "input_s_per_step": input_s, "step_s": step_s,
           "first_loss": first_loss, "loss": float(m["loss"]), "cpu_s": use.ru_utime + use.ru_stime}
    with open(os.path.join(args.out_dir, f"process_{jax.process_index()}.json"), "w") as f:
        json.dump(out, f)


def run_case(processes: int, devices: int, steps: int) -> dict:
    """Launches one case; returns the processes' reports and the wall time."""
    out_dir = tempfile.mkdtemp(prefix="mp_scaling_")
    cmd = [sys.executable, "-m", "reid_jax.launch", "--num_processes", str(processes),
           "--cpu_devices_per_process", str(devices), "--module",
           "benchmarks.multiprocess_scaling", "--timeout", "1200", "--", "--worker",
           "--steps", str(steps), "--out_dir", out_dir]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    reports = [json.load(open(os.path.join(out_dir, f"process_{i}.json")))  # noqa: SIM115
               for i in range(processes)]
    return {"wall_s": wall, "processes": reports}


def main() -> None:
    from reid_jax import reporting

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks/results/multiprocess_scaling.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out_dir", default="", help=argparse.SUPPRESS)
    ap.add_argument("--coordinator_address", default="", help=argparse.SUPPRESS)
    ap.add_argument("--num_processes", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--process_id", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    load = os.getloadavg()[0]
    rows, results = [], {}
    for name, (procs, devs) in CASES.items():
        r = run_case(procs, devs, args.steps)
        results[name] = r
        first = r["processes"][0]
        for p in r["processes"]:
            rows.append({
                "case": name, "process": p["process"], "rows/step": p["rows_loaded"],
                "input ms/step": 1000 * p["input_s_per_step"],
                "step ms": 1000 * p["step_s"],
                "images/s": first["global_batch"] / first["step_s"] if p is first else "",
                "CPU s": sum(q["cpu_s"] for q in r["processes"]) if p is first else "",
                "wall s": r["wall_s"] if p is first else "",
                "first loss": p["first_loss"], "last loss": p["loss"],
            })
    print(f"BoT bot.py:synthetic, global batch {first['global_batch']}, {args.steps} timed "
          f"steps; load average before: {load:.2f}")
    print(reporting.format_table(rows, ["case", "process", "rows/step", "input ms/step",
                                        "step ms", "images/s", "CPU s", "wall s", "first loss",
                                        "last loss"]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"load_1min": load, "steps": args.steps, "cases": results, "rows": rows},
                  f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
