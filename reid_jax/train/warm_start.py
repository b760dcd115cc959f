"""Start a run from the trained weights of an earlier run (``model.init_from_run``).

RPP's induced training (Sun et al., ECCV 2018, Sec. 3.3) starts from a trained PCB: the
new run (``model.rpp=True``) has every PCB parameter plus the part classifier. This copies
each parameter and BatchNorm statistic that the earlier run's newest checkpoint holds
with the same name and shape into the new model and leaves the others (the part
classifier) at their initial values. Only weights move: the step, the optimizer state and
the epoch start afresh, and the config fingerprint is not compared (the configs differ
by design). Resuming an interrupted run is a different thing: run again in its workdir.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from reid_jax import checkpoint, errors


def _read_latest(workdir: str) -> tuple[dict, int]:
    """The newest checkpointed TrainState of ``workdir`` as nested dicts, and its step."""
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
        raise errors.ReidError(
            f"model.init_from_run={workdir!r} holds no checkpoints/ folder; give the --workdir "
            "of a finished run (e.g. the PCB run an RPP run starts from)."
        )
    step = checkpoint.manager(workdir).latest_step()
    if step is None:
        raise errors.ReidError(f"model.init_from_run={workdir!r} holds no complete checkpoint.")
    path = os.path.join(os.path.abspath(workdir), "checkpoints", str(step), "state")
    ckpt = ocp.StandardCheckpointer()
    # Restore onto one local device whatever mesh wrote it; the trainer replicates later.
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
        ckpt.metadata(path).item_metadata.tree,
    )
    return ckpt.restore(path, target), step


def _copy(new: Mapping[str, Any], old: Mapping[str, Any], workdir: str, what: str) -> tuple[dict, int]:
    """``new`` with every leaf that ``old`` holds under the same path replaced by it."""
    flat_new = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(new)))
    flat_old = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(old)))
    copied = 0
    for key, value in flat_new.items():
        if key not in flat_old:
            continue
        if tuple(flat_old[key].shape) != tuple(value.shape):
            raise errors.ReidError(
                f"model.init_from_run={workdir!r}: {what}/{'/'.join(key)} has shape "
                f"{tuple(flat_old[key].shape)} there and {tuple(value.shape)} here; the two "
                "runs need the same architecture and number of training identities."
            )
        flat_new[key] = jnp.asarray(flat_old[key], value.dtype)
        copied += 1
    return flax.traverse_util.unflatten_dict(flat_new), copied


def load_run(
    workdir: str, params: Mapping[str, Any], batch_stats: Mapping[str, Any]
) -> tuple[dict, dict, dict[str, int]]:
    """Copies the weights of ``workdir``'s newest checkpoint into a freshly initialised model.

    Args:
      workdir: the earlier run's workdir (it holds ``checkpoints/``).
      params: the new model's parameters (``params['model']`` of the trainer); not modified.
      batch_stats: the new model's BatchNorm statistics; not modified.

    Returns:
      (params, batch_stats, counts): counts has 'step' (of the checkpoint read), 'copied'
      (leaves taken from it) and 'kept' (leaves it does not hold, left as initialised).

    Raises:
      errors.ReidError: no checkpoint, no shared leaf at all, or a shared leaf whose
        shape differs.
    """
    state, step = _read_latest(workdir)
    new_params, n_params = _copy(params, state["params"].get("model", {}), workdir, "params")
    new_stats, n_stats = _copy(batch_stats, state.get("batch_stats", {}), workdir, "batch_stats")
    total = len(jax.tree.leaves(params)) + len(jax.tree.leaves(batch_stats))
    if n_params == 0:
        raise errors.ReidError(
            f"model.init_from_run={workdir!r} shares no parameter name with this model; was it "
            "trained with the same model.name and backbone?"
        )
    copied = n_params + n_stats
    return new_params, new_stats, {"step": int(step), "copied": copied, "kept": total - copied}
