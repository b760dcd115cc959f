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
    """A 1-D ('data',) mesh over the first ``num_devices`` devices (0 = all).

    The devices are ordered process by process, so that each process's share of a batch
    is one contiguous block of rows (``distributed.process_rows``). A multi-process run
    uses every device of every process. A model axis would be a second mesh axis
    (``('data', 'model')`` over ``devices.reshape(n // m, m)``) with the parameters'
    shardings naming it; every trainer here replicates the parameters.
    """
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    n = num_devices or len(devices)
    if n > len(devices):
        raise errors.ReidError(
            f"config asks for {n} devices but only {len(devices)} are visible; "
            "set --config.num_devices=0 (all)."
        )
    if jax.process_count() > 1 and n != len(devices):
        raise errors.ReidError(
            f"config asks for {n} devices, but a {jax.process_count()}-process run uses all "
            f"{len(devices)}; set --config.num_devices=0."
        )
    # Auto axes: XLA propagates shardings inside the step (JAX >= 0.7 defaults to Explicit).
    return jax.sharding.Mesh(
        np.asarray(devices[:n]), ("data",), axis_types=(jax.sharding.AxisType.Auto,)
    )


def data_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Leading axis split over 'data'."""
    return NamedSharding(mesh, P("data"))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Same value on every device."""
    return NamedSharding(mesh, P())


def to_global(batch: Mapping[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
    """Host batch (this process's rows, ``distributed.process_rows``) -> global arrays
    sharded along 'data'."""
    sharding = data_sharding(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()
    }


def split_host(x: np.ndarray, mesh: jax.sharding.Mesh) -> jax.Array:
    """A host array every process holds whole -> a global array split along 'data'
    (each device takes its rows)."""
    return jax.make_array_from_callback(x.shape, data_sharding(mesh), lambda i: x[i])


def replicate(tree: object, mesh: jax.sharding.Mesh) -> object:
    """Places every leaf of ``tree`` on all devices of ``mesh`` (in a multi-process run
    every process passes the same values)."""
    repl = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, repl)

    def put(x: Any) -> jax.Array:
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(x)),
                                            impl=jax.random.key_impl(x))
        if isinstance(x, jax.Array) and x.sharding == repl:
            return x
        host = np.asarray(x)  # device_put cannot reach other processes' devices
        return jax.make_array_from_callback(host.shape, repl, lambda i: host[i])

    return jax.tree.map(put, tree)


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
