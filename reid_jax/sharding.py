"""Device mesh and shardings: the batch is split along 'data', parameters are replicated.

One code path for 1 CPU, 8 simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``), a GPU, or a TPU pod slice:
``jax.jit`` compiles the step for the mesh; a batch statistic over a global array is a
cross-device statistic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from reid_jax import errors


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
    """A 1-D ('data',) mesh over the first ``num_devices`` devices (0 = all)."""
    devices = jax.devices()
    n = num_devices or len(devices)
    if n > len(devices):
        raise errors.ReidError(
            f"config asks for {n} devices but only {len(devices)} are visible; "
            "set --config.num_devices=0 (all)."
        )
    # Auto axes: XLA propagates shardings inside the step (JAX >= 0.7 defaults to Explicit).
    return jax.make_mesh(
        (n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices[:n]
    )


def data_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Leading axis split over 'data'."""
    return NamedSharding(mesh, P("data"))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Same value on every device."""
    return NamedSharding(mesh, P())


def to_global(batch: Mapping[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
    """Host batch (this process's rows) -> global arrays sharded along 'data'."""
    sharding = data_sharding(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()
    }


def replicate(tree: object, mesh: jax.sharding.Mesh) -> object:
    """Places every leaf of ``tree`` on all devices of ``mesh``."""
    return jax.device_put(tree, replicated(mesh))


def jit_train_step(step_fn: Callable[..., Any], mesh: jax.sharding.Mesh) -> Callable[..., Any]:
    """Jits ``step_fn(state, batch, rng) -> (state, metrics)`` over ``mesh``.

    The state and rng are replicated, the batch is split along 'data', the metrics come
    back replicated, and the input state's buffers are donated to the output state.
    """
    repl = replicated(mesh)
    return jax.jit(
        step_fn,
        in_shardings=(repl, data_sharding(mesh), repl),
        out_shardings=(repl, repl),
        donate_argnums=0,
    )
