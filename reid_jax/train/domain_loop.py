"""The epoch loop the meta-learning trainers share: domain-balanced batches, step, log, save.

MetaBIN (train/metabin.py) and M3L (train/m3l.py) differ in their step, not in how
epochs run: each epoch draws P x K from every source domain
(``episodes.domain_pk_batches``), checks for a NaN/inf loss on logging steps and at
the end of the epoch, and checkpoints at epoch boundaries with the config fingerprint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from reid_jax import checkpoint, reporting, sharding
from reid_jax.data import pipeline, sources
from reid_jax.meta import episodes
from reid_jax.train import supervised


def train_domain_epochs(
    train_step: Callable[[Any, dict, jax.Array], tuple[Any, dict]],
    state: Any,
    train: sources.ReidData,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    writer: reporting.MetricWriter,
    mngr: ocp.CheckpointManager,
    start_epoch: int,
    steps: int,
) -> tuple[Any, float, int]:
    """Runs epochs ``start_epoch`` .. the configured stop, from domain-balanced batches.

    Returns:
      (final state, training seconds, epochs done).
    """
    rng = jax.random.key(config.seed + 1)
    stop_at = min(config.train.stop_after_epochs or config.train.num_epochs, config.train.num_epochs)
    step = int(jax.device_get(state.step))
    t0 = time.time()
    for epoch in range(start_epoch, stop_at):
        rows = episodes.domain_pk_batches(
            train.labels, train.camera_ids, train.domains, config.data.p, config.data.k,
            config.seed, epoch, steps,
        )
        loader = pipeline.train_loader(
            train, rows, config.data.height, config.data.width, config.data.num_threads
        )
        for batch in reporting.progress(loader, len(rows), f"epoch {epoch + 1}", config.train.progress):
            state, metrics = train_step(state, sharding.to_global(batch, mesh), rng)
            step += 1
            if step % config.train.log_every_steps == 0:
                supervised.check_finite(state)
                writer.write(step, jax.device_get(metrics), prefix="train/")
        supervised.check_finite(state)
        done = epoch + 1
        if done % config.train.checkpoint_every_epochs == 0 or done == stop_at:
            checkpoint.save(mngr, done, state,
                            {"epoch": done, "config_fingerprint": checkpoint.fingerprint(config)})
    return state, time.time() - t0, stop_at
