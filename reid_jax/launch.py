r"""Starts N processes of one run on this machine: tests, benchmarks, one node's GPUs.

  python -m reid_jax.launch --num_processes 2 --cpu_devices_per_process 2 -- \
      --config experiments/bot.py:synthetic --workdir runs/bot_2proc

Each process runs ``python -m reid_jax.main <args> --coordinator_address
localhost:PORT --num_processes N --process_id i`` (``--module`` runs another module
that takes the same three flags) with a free port. ``--cpu_devices_per_process d`` gives
every process d CPU devices (collectives through gloo); ``--gpus_per_process g`` gives
process i the GPUs i*g .. i*g+g-1 (``CUDA_VISIBLE_DEVICES``). The launcher waits for all
of them; when one fails it stops the others (a process left alone would wait for its
peers forever) and exits with the failed one's status. ``--timeout`` bounds the whole run.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

from reid_jax import errors


def free_port() -> int:
    """A TCP port nobody listens on now (the coordinator's)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def process_env(
    base: dict[str, str], index: int, cpu_devices: int = 0, gpus: int = 0
) -> dict[str, str]:
    """The environment of process ``index``: its CPU device count or its GPUs."""
    env = dict(base)
    if cpu_devices:
        env["JAX_PLATFORMS"] = "cpu"
        env["JAX_NUM_CPU_DEVICES"] = str(cpu_devices)
        # The single-process way of simulating devices would override the count.
        flags = [f for f in env.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
        env["XLA_FLAGS"] = " ".join(flags)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(index * gpus + g) for g in range(gpus))
    return env


def commands(
    num_processes: int, port: int, args: list[str], module: str = "reid_jax.main"
) -> list[list[str]]:
    """One command line per process."""
    return [[sys.executable, "-m", module, *args, f"--coordinator_address=localhost:{port}",
             f"--num_processes={num_processes}", f"--process_id={i}"]
            for i in range(num_processes)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(
    num_processes: int, args: list[str], cpu_devices: int = 0, gpus: int = 0,
    module: str = "reid_jax.main", timeout: float = 0, port: int = 0,
) -> int:
    """Runs the processes; returns 0, or the first failed process's exit status
    (124 when ``timeout`` seconds passed first).

    Raises:
      ReidError: a bad process count.
    """
    if num_processes < 1:
        raise errors.ReidError(f"--num_processes = {num_processes} must be >= 1")
    port = port or free_port()
    procs = [subprocess.Popen(cmd, env=process_env(os.environ, i, cpu_devices, gpus))
             for i, cmd in enumerate(commands(num_processes, port, args, module))]
    start = time.time()
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:
                _stop(procs)
                return failed[0]
            if all(c == 0 for c in codes):
                return 0
            if timeout and time.time() - start > timeout:
                _stop(procs)
                print(f"error: the {num_processes} processes ran past --timeout {timeout:g} s; "
                      "stopped them", file=sys.stderr)
                return 124
            time.sleep(0.2)
    except KeyboardInterrupt:
        _stop(procs)
        return 128 + signal.SIGINT


def main(argv: list[str] | None = None) -> int:
    """Command line: launcher flags, then ``--``, then the module's own arguments."""
    argv = sys.argv[1:] if argv is None else argv
    ours, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    p = argparse.ArgumentParser(prog="python -m reid_jax.launch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_processes", type=int, required=True)
    p.add_argument("--cpu_devices_per_process", type=int, default=0,
                   help="simulated CPU devices per process (0: the machine's own devices)")
    p.add_argument("--gpus_per_process", type=int, default=0,
                   help="GPUs per process on this node (0: every process sees all)")
    p.add_argument("--module", default="reid_jax.main")
    p.add_argument("--timeout", type=float, default=0, help="seconds; 0 = none")
    p.add_argument("--port", type=int, default=0, help="coordinator port; 0 = a free one")
    a = p.parse_args(ours)
    try:
        return launch(a.num_processes, rest, a.cpu_devices_per_process, a.gpus_per_process,
                      a.module, a.timeout, a.port)
    except errors.ReidError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
