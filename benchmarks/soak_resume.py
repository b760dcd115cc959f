"""Kill -9 soak: tiny runs killed at random moments and resumed end where an
uninterrupted run ends, bit for bit.

For each trainer (tiny BoT, tiny cluster contrast, tiny MetaBIN) the script runs the
command line once uninterrupted (epoch checkpoints only), then again in fresh workdirs
with a checkpoint after every step (``train.checkpoint_every_steps=1``), sending SIGKILL
to each attempt (at a random moment of the reference's training window, or right after
the run enters a checkpoint write or a pseudo-label round) and starting the same command
again, until the run completes; it repeats that until ``--kills`` kills have landed. Each kill is classified
by the run's ``events.log`` (start-up and compilation, steps, a checkpoint write, an
epoch's preparation or pseudo-label round, the final evaluation). After every kill the
newest checkpoint that had completed before it must still be there ("data lost"
otherwise); every completed run's final parameters (every array of the last checkpoint)
and final evaluation must equal the uninterrupted run's exactly ("mismatches"
otherwise). Prints a table and writes JSON.

  python benchmarks/soak_resume.py [--kills 20] [--trainers bot,cluster_contrast,metabin]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINERS = {
    "bot": ["--config", "experiments/bot.py:synthetic_tiny", "--config.train.num_epochs=4"],
    "cluster_contrast": ["--config", "experiments/cluster_contrast.py:synthetic_tiny",
                         "--config.train.num_epochs=3"],
    # Three steps an epoch so that kills land between meta steps too.
    "metabin": ["--config", "experiments/metabin.py:synthetic_tiny",
                "--config.data.steps_per_epoch=3", "--config.train.num_epochs=3"],
}
CLUSTERING = {"cluster_contrast"}  # kills are also aimed at its pseudo-label rounds
COMMON = ["--config.num_devices=1", "--config.eval.before_training=False",
          "--config.train.progress=False"]


def _command(trainer: str, workdir: str, step_checkpoints: bool) -> list[str]:
    extra = ["--config.train.checkpoint_every_steps=1"] if step_checkpoints else []
    return [sys.executable, "-m", "reid_jax.main", *TRAINERS[trainer], *COMMON, *extra,
            "--workdir", workdir]


def _env(data_dir: str) -> dict[str, str]:
    return dict(os.environ, TFDS_DATA_DIR=data_dir, JAX_PLATFORMS="cpu", XLA_FLAGS="")


def final_params(workdir: str) -> dict[str, np.ndarray]:
    """Every array of the newest checkpoint of ``workdir``, by path."""
    import jax
    import orbax.checkpoint as ocp

    from reid_jax import checkpoint

    mngr = checkpoint.manager(workdir)
    step = mngr.latest_step()
    path = os.path.join(os.path.abspath(workdir), "checkpoints", str(step), "state")
    ckpt = ocp.StandardCheckpointer()
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          ckpt.metadata(path).item_metadata.tree)
    tree = ckpt.restore(path, target)
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


def final_eval(workdir: str) -> dict[str, float]:
    """The last evaluation's scalars in ``metrics.jsonl``."""
    last = {}
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            ev = {k: v for k, v in rec.items() if k.startswith("eval/")}
            if ev:
                last = ev
    return last


def complete_steps(workdir: str) -> set[int]:
    """The checkpoint steps whose folder is complete (Orbax renames it when done)."""
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return set()
    return {int(n) for n in os.listdir(folder) if n.isdigit()}


def last_event(workdir: str, pid: int) -> str:
    """What process ``pid`` was doing by its last line of events.log."""
    path = os.path.join(workdir, "events.log")
    lines = []
    if os.path.exists(path):
        with open(path) as f:
            lines = [ln.split(" ", 2) for ln in f.read().splitlines() if ln.count(" ") >= 2]
    mine = [ev for _, p, ev in lines if p == str(pid)]
    if not mine:
        return "start-up"
    ev = mine[-1]
    if ev.startswith("save step"):
        return "checkpoint write"
    if ev.startswith("prepare epoch"):
        return "epoch preparation / pseudo-label round"
    if ev.startswith("start"):
        return "restore and compilation"
    if ev.startswith("evaluate"):
        return "final evaluation"
    return "steps"


def _timeline(workdir: str) -> tuple[float, float]:
    """Times of the reference run's first epoch preparation and of its final evaluation."""
    with open(os.path.join(workdir, "events.log")) as f:
        lines = [ln.split(" ", 2) for ln in f.read().splitlines()]
    first = next(float(t) for t, _, ev in lines if ev.startswith("prepare epoch"))
    last = next(float(t) for t, _, ev in lines if ev.startswith("evaluate"))
    return first, last


def saved_before(workdir: str, pid: int) -> int:
    """The newest step whose checkpoint write finished by ``pid``'s account (-1: none)."""
    path = os.path.join(workdir, "events.log")
    best = -1
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4 and parts[2] == "saved":
                    best = max(best, int(parts[3]))
    return best


def soak(trainer: str, kills: int, data_dir: str, root: str, rng: random.Random) -> dict:
    """The reference run, then kill-and-resume cycles until ``kills`` kills landed."""
    ref_dir = os.path.join(root, f"{trainer}_reference")
    t0, t_launch = time.perf_counter(), time.time()
    res = subprocess.run(_command(trainer, ref_dir, False), cwd=ROOT, env=_env(data_dir),
                         capture_output=True, text=True)
    ref_seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{trainer} reference run failed:\n{res.stderr[-3000:]}")
    ref_params, ref_eval = final_params(ref_dir), final_eval(ref_dir)
    # Kill times: from a little before the first epoch's preparation to the final
    # evaluation of the reference, measured from its launch (start-up is mostly imports).
    first, last = _timeline(ref_dir)
    launch = t_launch
    window = (max(0.0, 0.8 * (first - launch)), max(first - launch + 1.0, last - launch))
    report = {"trainer": trainer, "reference_seconds": ref_seconds, "kills": 0,
              "survived": 0, "data_lost": 0, "runs_completed": 0, "mismatches": 0,
              "restarts": 0, "phases": {}, "failures": []}
    targets = ["random", "random", "checkpoint write"]
    if trainer in CLUSTERING:
        targets.append("epoch preparation / pseudo-label round")
    cycle = 0
    while report["kills"] < kills:
        workdir = os.path.join(root, f"{trainer}_soak_{cycle}")
        cycle += 1
        cycle_kills = cycle_lost = 0
        while True:
            # Once the kills are in, the cycle's last attempt runs to its end. Otherwise
            # the kill lands at a random time of the window, or right after the run
            # enters a chosen phase (a checkpoint write; a pseudo-label round).
            done = report["kills"] + cycle_kills >= kills
            target = rng.choice(targets)
            deadline = time.time() + (rng.uniform(*window) if target == "random" else window[1])
            log = open(os.path.join(root, "attempt.log"), "w")  # noqa: SIM115
            proc = subprocess.Popen(_command(trainer, workdir, True), cwd=ROOT,
                                    env=_env(data_dir), stdout=log, stderr=subprocess.STDOUT)
            while not done and proc.poll() is None and time.time() < deadline:
                if target != "random" and last_event(workdir, proc.pid) == target:
                    time.sleep(rng.uniform(0.0, 0.02))
                    break
                time.sleep(0.005)
            if not done and proc.poll() is None:
                phase = last_event(workdir, proc.pid)
                saved = saved_before(workdir, proc.pid)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                log.close()
                cycle_kills += 1
                report["phases"][phase] = report["phases"].get(phase, 0) + 1
                if saved >= 0 and saved not in complete_steps(workdir):
                    cycle_lost += 1
                    report["failures"].append(f"{workdir}: step {saved} gone after a kill")
                continue
            proc.wait()
            log.close()
            with open(log.name) as f:
                err = f.read()
            ok = proc.returncode == 0
            if not ok:
                report["failures"].append(f"{workdir}: exit {proc.returncode}: {err[-500:]}")
            else:
                report["runs_completed"] += 1
                params, ev = final_params(workdir), final_eval(workdir)
                ok = (params.keys() == ref_params.keys()
                      and all(np.array_equal(params[k], ref_params[k]) for k in params)
                      and ev == ref_eval)
                if not ok:
                    report["failures"].append(f"{workdir}: final state or evaluation differs")
            report["mismatches"] += 0 if ok else 1
            break
        report["kills"] += cycle_kills
        report["data_lost"] += cycle_lost
        report["survived"] += cycle_kills - cycle_lost if ok else 0
    return report


def main() -> None:
    from absl import logging

    from reid_jax import reporting

    logging.set_verbosity(logging.ERROR)  # Orbax's notes on reading a checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20, help="kills per trainer")
    ap.add_argument("--trainers", default=",".join(TRAINERS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data_dir", default="", help="TFDS data dir (default: a temporary one)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks/results/soak_resume.json"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    cpu0 = os.times()
    with tempfile.TemporaryDirectory(prefix="soak_") as root:
        data_dir = args.data_dir or os.path.join(root, "tfds")
        reports = [soak(t, args.kills, data_dir, root, rng) for t in args.trainers.split(",")]
    cpu1 = os.times()
    rows = [{"trainer": r["trainer"], "kills": r["kills"],
             "survived": f"{r['survived']}/{r['kills']}", "data lost": r["data_lost"],
             "runs compared": r["runs_completed"], "mismatches": r["mismatches"],
             "kills by phase": ", ".join(f"{k} {v}" for k, v in sorted(r["phases"].items()))}
            for r in reports]
    print(reporting.format_table(rows, ["trainer", "kills", "survived", "data lost",
                                        "runs compared", "mismatches", "kills by phase"]))
    for r in reports:
        for f in r["failures"]:
            print(f"{r['trainer']}: {f}")
    cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    wall = time.perf_counter() - t0
    print(f"wall {wall:.0f} s, CPU {cpu:.0f} s")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"kills_per_trainer": args.kills, "seed": args.seed, "wall_s": wall,
                   "cpu_s": cpu, "reports": reports}, f, indent=1)
    print(f"wrote {args.out}")
    if any(r["data_lost"] or r["mismatches"] or r["survived"] < r["kills"] for r in reports):
        sys.exit(1)


if __name__ == "__main__":
    main()
