"""Several processes (hosts) in one run: start-up, which rows a process loads, agreement.

A multi-process run is one program on every process (SPMD): the same config, the same
global P x K batches from ``(seed, epoch)``, the same jitted step over one mesh of every
process's devices. What differs per process is only

- the input: a process decodes only its own rows of each global batch
  (:func:`process_rows`) and ``sharding.to_global`` assembles the global array from the
  processes' slices;
- the records: files, logs, progress bars, pictures and the summary are written by
  process 0 (:func:`is_primary`); Orbax checkpoints are written by every process
  together, their metadata once.

Features for evaluation and clustering come back replicated (all-gathered) from the
jitted embedding, so every process holds all of them; the protocols then compute ranks
and mAP identically on every process, and pseudo labels are computed everywhere and
those of process 0 broadcast (:func:`broadcast`), so that every process trains on the
same labels even where a host computation is not bitwise portable.

On CPU (tests, the local launcher ``python -m reid_jax.launch``) the collectives between
processes go through gloo.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np

from reid_jax import errors


def initialize(
    coordinator_address: str = "", num_processes: int = 1, process_id: int = 0,
    auto: bool = False,
) -> None:
    """Starts ``jax.distributed`` when the run has several processes.

    Args:
      coordinator_address: 'host:port' of process 0; with ``num_processes`` and
        ``process_id`` (the local launcher, a hand-written job script).
      num_processes: how many processes the run has; 1 = a single-process run (nothing
        to start).
      process_id: this process's index, 0 .. num_processes - 1.
      auto: let JAX find the cluster itself (TPU pod slices, SLURM, Open MPI), with no
        address given.

    Raises:
      ReidError: inconsistent flags.
    """
    if not auto and num_processes <= 1:
        return
    if not auto and not (coordinator_address and 0 <= process_id < num_processes):
        raise errors.ReidError(
            f"a {num_processes}-process run needs --coordinator_address host:port and "
            f"--process_id in 0..{num_processes - 1} (got {coordinator_address!r}, "
            f"{process_id}); or use python -m reid_jax.launch"
        )
    # CPU devices of different processes talk through gloo (no effect on GPU / TPU).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if auto:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)


def is_primary() -> bool:
    """True on process 0, which writes logs, pictures and the summary."""
    return jax.process_index() == 0


def process_rows(mesh: jax.sharding.Mesh, batch: int) -> slice:
    """The rows of a global batch of ``batch`` (split along 'data') this process loads.

    ``sharding.make_mesh`` orders the devices process by process, so a process's rows
    are one contiguous block; all rows in a single-process run.
    """
    from reid_jax import sharding  # sharding imports this module

    spans = sharding.data_sharding(mesh).addressable_devices_indices_map((batch,)).values()
    starts = sorted(s[0].indices(batch)[:2] for s in spans)
    lo, hi = starts[0][0], starts[-1][1]
    if sum(b - a for a, b in starts) != hi - lo:
        raise errors.ReidError("this process's devices hold non-contiguous rows of the batch; "
                               "build the mesh with sharding.make_mesh")
    return slice(lo, hi)


def _digest(value: str) -> np.ndarray:
    return np.frombuffer(hashlib.sha256(value.encode()).digest()[:8], np.int32).copy()


def check_same(value: str, what: str, fix: str) -> None:
    """Raises ReidError on every process unless all processes hold the same ``value``.

    Args:
      value: a string every process computes (a config fingerprint, a dataset digest).
      what: what it is, for the message.
      fix: what the user should do.
    """
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    mine = _digest(value)
    every = np.asarray(multihost_utils.process_allgather(mine)).reshape(jax.process_count(), -1)
    differ = [i for i in range(len(every)) if not np.array_equal(every[i], every[0])]
    if differ:
        raise errors.ReidError(
            f"processes {differ} have a different {what} from process 0; {fix}"
        )


def broadcast(tree: Any) -> Any:
    """Process 0's value of a pytree of host arrays, on every process (identity when
    single-process)."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def any_process(flag: bool) -> bool:
    """True on every process when ``flag`` is True on any process (a collective: every
    process must call it at the same point)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(np.asarray(multihost_utils.process_allgather(np.int32(flag))).any())
