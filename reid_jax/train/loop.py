"""The one run loop every trainer shares: epochs (or rounds), steps, logging, checks,
checkpoints and evaluation.

A trainer (one module per method, ``reid_jax/train/trainers.py``) says only what is its
own: ``build(ctx) -> Trainer`` gives the network, the initial state, the jitted
``train_step(state, batch, rng) -> (state, metrics)`` and ``prepare_epoch(state,
epoch)``, which returns the epoch's batches (and, for the clustering methods, runs the
pseudo-label round first). Everything else is written once, here:

- validation of the whole config before any work (``config_schema.validate``);
- several processes (``reid_jax/distributed.py``): each loads its rows of every batch,
  process 0 writes the records, every process joins the checkpoints;
- the workdir's lock (one run writes a workdir) and SIGTERM as a request to checkpoint
  and stop (``reid_jax/preemption.py``);
- resume from the newest checkpoint of the workdir (refused under another config),
  mid-epoch when it was written inside one (``train.checkpoint_every_steps``: the
  position in the epoch and, for the clustering methods, the round's pseudo labels);
- the untrained model's evaluation, once per workdir (``eval.before_training``); for a
  domain-adaptation run (``data.source``) that is the source model's direct transfer;
- per epoch: the batches through the Grain loader, the step (each waits for the one
  before it, so one step stays queued and the progress bar counts finished steps),
  training metrics with images/s and the share of time spent waiting for input every
  ``train.log_every_steps``, the non-finite check,
  checkpoints every ``train.checkpoint_every_epochs``, every
  ``train.checkpoint_every_steps`` and at the end, evaluation every ``eval.every_epochs``,
  and ``events.log``, one line per phase (what a crashed run was doing);
- the configured evaluators at the end (``reid_jax/evaluation/evaluators.py``), with the
  ranked-list picture, and for the clustering methods ``cluster_rounds.png``, the
  logged diagnostics of every round (``reid_jax/plots.py``) and each round's pseudo labels
  (``pseudo_labels/round_NNN.npy``); ``--mode=eval`` is :func:`evaluate`: restore, then the same
  evaluators.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Collection
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from reid_jax import (
    checkpoint,
    config_schema,
    distributed,
    errors,
    plots,
    preemption,
    reporting,
    sharding,
)
from reid_jax.data import pipeline, sources
from reid_jax.evaluation import evaluators
from reid_jax.train import init


@dataclasses.dataclass(frozen=True)
class Context:
    """What a trainer's ``build`` gets.

    Attributes:
      config: the validated config.
      mesh: the device mesh.
      for_eval: True under ``--mode=eval``: build the state's structure only (the
        weights come from the checkpoint; ``model.init_from*`` are not read).
    """

    config: ml_collections.ConfigDict
    mesh: jax.sharding.Mesh
    for_eval: bool = False


@dataclasses.dataclass
class Epoch:
    """One epoch's work, from a trainer's ``prepare_epoch``.

    Attributes:
      state: the state to train from (a clustering round updates memories, classifiers).
      data: the pictures the batches index.
      batches: [steps, batch] indices into ``data``.
      stats: scalars logged under ``cluster/`` (pseudo-label rounds), or None.
      summary: one line printed before the epoch, or ''.
    """

    state: Any
    data: sources.ReidData
    batches: np.ndarray
    stats: dict[str, float] | None = None
    summary: str = ""


@dataclasses.dataclass
class Trainer:
    """A method, built for one run.

    Attributes:
      model: the network the evaluators apply.
      state: the replicated initial state (its ``train`` field is the TrainState).
      train_step: jitted ``train_step(state, batch, rng) -> (state, metrics)``.
      prepare_epoch: ``(state, epoch) -> Epoch``.
      eval_variables: the variables the evaluators apply, from a state.
      start: on a fresh start only (not a resume): ``state -> state`` (M3L fills its
        memories from the initial model).
      resume_epoch: the clustering methods: ``(state, epoch, labels) -> Epoch``, the
        epoch of a pseudo-label round already run (its labels from a mid-epoch
        checkpoint), without running the round again. Without it ``prepare_epoch`` must
        not depend on the state, so that it rebuilds a resumed epoch exactly.
    """

    model: nn.Module
    state: Any
    train_step: Callable[[Any, dict, jax.Array], tuple[Any, dict]]
    prepare_epoch: Callable[[Any, int], Epoch]
    eval_variables: Callable[[Any], Any]
    start: Callable[[Any], Any] | None = None
    resume_epoch: Callable[[Any, int, np.ndarray], Epoch] | None = None


def build(
    config: ml_collections.ConfigDict, for_eval: bool = False,
    overrides: Collection[str] | None = None,
) -> tuple[Trainer, Context]:
    """Validates ``config`` (see ``config_schema.validate`` for ``overrides``) and builds
    its trainer (``for_eval``: the state's structure only)."""
    from reid_jax.train import trainers  # the trainer modules import this one

    config_schema.validate(config, overrides)
    distributed.check_same(config.to_json_best_effort(sort_keys=True), "config",
                           "give every process the same --config and overrides.")
    if not for_eval:
        init.check_paths(config)
    ctx = Context(config, sharding.make_mesh(config.num_devices), for_eval)
    return trainers.TRAINERS[config.trainer].build(ctx), ctx


def loader(
    epoch: Epoch, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, limit: int = 0,
    start: int = 0,
) -> Any:
    """The host batches of ``epoch`` from batch ``start`` (the first ``limit`` of them;
    all with 0), each holding only this process's rows (``distributed.process_rows``)."""
    rows = epoch.batches[start:]
    rows = rows[:limit] if limit else rows
    rows = rows[:, distributed.process_rows(mesh, rows.shape[1])]
    d = config.data
    return pipeline.train_loader(epoch.data, rows, d.height, d.width, d.num_threads, d.resize)


def host_batches(
    trainer: Trainer, config: ml_collections.ConfigDict, state: Any, epoch: int = 0,
    limit: int = 0, mesh: jax.sharding.Mesh | None = None,
) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """The state after ``prepare_epoch(state, epoch)`` and that epoch's first ``limit``
    host batches (all with 0; this process's rows of ``mesh``, all rows without one):
    one step's inputs, for tests and benchmarks."""
    ep = trainer.prepare_epoch(state, epoch)
    if mesh is None:
        mesh = sharding.make_mesh(1)
    return ep.state, list(loader(ep, config, mesh, limit))


def check_finite(state: Any) -> None:
    """Raises ReidError naming the step if a loss became NaN or inf."""
    bad = int(jax.device_get(state.train.nonfinite_step))
    if bad >= 0:
        raise errors.ReidError(
            f"loss became NaN or inf at step {bad}; that update was skipped and the last "
            "checkpoint is intact. Lower --config.optim.lr or set --config.optim.grad_clip."
        )


OTHER_EVALUATORS = "other_evaluators"  # eval_before_training.json: the later evaluators


def _before_training(
    evals: evaluators.Evaluators, trainer: Trainer, state: Any, config: ml_collections.ConfigDict,
    workdir: str, start_epoch: int,
) -> tuple[dict | None, dict[str, dict]]:
    """The untrained model's results, computed once per workdir and kept in a JSON file:
    the first evaluator's scalars, and {name: scalars} of the other evaluators."""
    if not config.eval.before_training:
        return None, {}
    path = os.path.join(workdir, "eval_before_training.json")
    if distributed.broadcast(np.asarray(os.path.exists(path))).item():
        if not distributed.is_primary():  # the results are process 0's to report
            return None, {}
        with open(path) as f:
            before = json.load(f)
        return before, before.pop(OTHER_EVALUATORS, {})
    if start_epoch > 0:
        return None, {}
    results = evals(trainer.model, trainer.eval_variables(state))
    scalars = {name: {k: v for k, v in res.items() if np.isscalar(v)}
               for name, res in results.items()}
    first = next(iter(scalars))
    others = {name: res for name, res in scalars.items() if name != first}
    if distributed.is_primary():
        with open(path, "w") as f:
            json.dump({**scalars[first], OTHER_EVALUATORS: others}, f)
    return scalars[first], others


def _run_epoch(
    trainer: Trainer, epoch: Epoch, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh,
    writer: reporting.MetricWriter, rng: jax.Array, step: int, index: int, position: int = 0,
    save_mid: Callable[[Any, int, int], None] = lambda state, step, at: None,
) -> tuple[Any, int]:
    """The steps of one epoch from batch ``position``; training metrics, images/s and the
    input wait on logging steps; ``save_mid(state, step, position)`` every
    ``train.checkpoint_every_steps`` inside the epoch and on preemption.

    The progress bar counts finished steps, not dispatched ones: after dispatching step
    i the loop waits for step i - 1, so one step is always queued behind the running one
    and the device never waits on that sync. ``input_wait_fraction`` is the share of the
    wall time spent waiting for the loader's next batch (0 when decoding keeps ahead).

    Raises:
      preemption.Preempted: SIGTERM arrived; the position was saved first.
    """
    state = epoch.state
    batches = iter(loader(epoch, config, mesh, start=position))
    per_step = epoch.batches.shape[1]
    t_log, s_log, waited = time.time(), step, 0.0
    bar = reporting.progress(None, len(epoch.batches), f"epoch {index + 1}",
                             config.train.progress and distributed.is_primary())
    bar.update(position)
    every, single = config.train.checkpoint_every_steps, jax.process_count() == 1
    previous = None
    while True:
        t0 = time.time()
        batch = next(batches, None)
        waited += time.time() - t0
        if batch is None:
            break
        state, metrics = trainer.train_step(state, sharding.to_global(batch, mesh), rng)
        step += 1  # a host counter: reading state.train.step would sync every step
        position += 1
        if previous is not None:
            jax.block_until_ready(previous)  # the step before this one has finished
            bar.update(1)
        previous = metrics["loss"]
        logs = step % config.train.log_every_steps == 0
        saves = bool(every) and step % every == 0
        inside = position < len(epoch.batches)  # the epoch's end has its own checkpoint
        stop = inside and preemption.agreed(single or logs or saves)
        if inside and (saves or stop):
            check_finite(state)  # never checkpoint a state that went non-finite
            save_mid(state, step, position)
        if stop:
            bar.close()
            raise preemption.Preempted(f"step {step} (epoch {index + 1}, batch {position})")
        if logs:
            host = jax.device_get(metrics)  # waits for this step: the rate below is real
            now = time.time()
            host["images_per_second"] = (step - s_log) * per_step / max(now - t_log, 1e-9)
            host["input_wait_fraction"] = waited / max(now - t_log, 1e-9)
            t_log, s_log, waited = now, step, 0.0
            check_finite(state)
            writer.write(step, host, prefix="train/")
    check_finite(state)  # waits for the last step
    bar.update(1 if previous is not None else 0)
    bar.close()
    return state, step


def train(
    config: ml_collections.ConfigDict, workdir: str, overrides: Collection[str] | None = None
) -> dict[str, Any]:
    """Trains (resuming from ``workdir`` if it holds a checkpoint), then evaluates.

    Holds the workdir's lock (``checkpoint.lock``) and turns SIGTERM into a checkpoint
    and a stop (``reid_jax/preemption.py``).

    Returns:
      {'before': the untrained model's results or None (the first evaluator's;
      'before_evaluations': the others'), 'after': the first evaluator's
      final results, 'evaluations': every evaluator's, 'paths', 'state',
      'train_seconds', 'epochs_done', 'rounds': the logged per-epoch stats}.

    Raises:
      preemption.Preempted: SIGTERM arrived; a checkpoint of where the run stood was
        written and the message says where.
    """
    trainer, ctx = build(config, for_eval=False, overrides=overrides)
    primary = distributed.is_primary()
    held = checkpoint.lock(workdir) if primary else contextlib.nullcontext()
    with held, preemption.handling():
        return _train(trainer, ctx, workdir)


def _train(trainer: Trainer, ctx: Context, workdir: str) -> dict[str, Any]:
    config, mesh = ctx.config, ctx.mesh
    primary = distributed.is_primary()
    if primary:
        reporting.write_config(config, workdir)
    writer = reporting.MetricWriter(workdir, enabled=primary)
    events = Events(workdir, primary)
    evals = evaluators.Evaluators(config, mesh)

    mngr = checkpoint.manager(workdir, config.train.keep_checkpoints)
    state, start_epoch, position, labels = trainer.state, 0, 0, None
    restored = checkpoint.restore_latest(mngr, state, config)
    if restored is not None:
        state, meta = restored
        start_epoch, position = int(meta["epoch"]), int(meta.get("position", 0))
        if meta.get("labels") is not None:
            labels = np.asarray(meta["labels"], np.int32)
        where = f", batch {position}" if position else ""
        say(f"resumed from {mngr.directory} at epoch {start_epoch + (position > 0)}{where} "
            f"(step {int(state.train.step)})")
    elif trainer.start is not None:
        state = trainer.start(state)
    events.write(f"start at step {int(jax.device_get(state.train.step))}")
    paths = reporting.run_paths(workdir, writer, mngr.directory)
    before, before_others = _before_training(evals, trainer, state, config, workdir,
                                             start_epoch + (position > 0))
    if before is not None:
        writer.write(0, before, prefix="eval_before/")

    rng = sharding.replicate(jax.random.key(config.seed + 1), mesh)
    stop_at = min(config.train.stop_after_epochs or config.train.num_epochs,
                  config.train.num_epochs)
    step = int(jax.device_get(state.train.step))
    fingerprint = checkpoint.fingerprint(config)
    rounds = []
    best: dict[str, Any] | None = None  # eval.select_best: the best evaluation so far

    def save(state: Any, step: int, meta: dict) -> None:
        if mngr.latest_step() == step:  # resumed here and stopped before a step
            return
        events.write(f"save step {step}")
        checkpoint.save(mngr, step, state, {**meta, "config_fingerprint": fingerprint})
        events.write(f"saved step {step}")

    def preempted(where: str) -> preemption.Preempted:
        events.write(f"preempted at {where}")
        return preemption.Preempted(
            f"stopped on SIGTERM at {where}; checkpoint saved in {mngr.directory}: run the "
            "same command to resume.")

    t0 = time.time()
    for index in range(start_epoch, stop_at):
        state = state.replace(train=state.train.replace(
            epoch=sharding.replicate(np.int32(index), mesh)))
        resuming = index == start_epoch and position > 0
        if resuming and labels is not None and trainer.resume_epoch is not None:
            epoch = trainer.resume_epoch(state, index, labels)
        else:
            events.write(f"prepare epoch {index + 1}")
            epoch = trainer.prepare_epoch(state, index)
        if index == start_epoch:
            distributed.check_same(epoch.data.digest(), f"training data ({epoch.data.name})",
                                   "point every process at the same built dataset "
                                   "(--config.data.data_dir).")
        if epoch.stats is not None:
            rounds.append(epoch.stats)
            writer.write(step, epoch.stats, prefix="cluster/")
            if primary:
                save_pseudo_labels(workdir, index, epoch.data.labels)
        if epoch.summary:
            say(epoch.summary)
        events.write(f"train epoch {index + 1}")
        # A mid-epoch checkpoint's meta: the epoch, and a round's labels (listed once per
        # epoch, not at every save); the position is added at each save.
        mid_meta: dict[str, Any] = {"epoch": index}
        if trainer.resume_epoch is not None:
            mid_meta["labels"] = np.asarray(epoch.data.labels).tolist()

        def save_mid(state: Any, step: int, at: int, mid_meta: dict = mid_meta) -> None:
            save(state, step, {**mid_meta, "position": at})

        try:
            state, step = _run_epoch(trainer, epoch, config, mesh, writer, rng, step, index,
                                     position if resuming else 0, save_mid)
        except preemption.Preempted as e:
            raise preempted(str(e)) from None
        done = index + 1
        stop = preemption.agreed(True)
        every_steps = config.train.checkpoint_every_steps
        if (done % config.train.checkpoint_every_epochs == 0 or done == stop_at or stop
                or (every_steps and step % every_steps == 0)):
            save(state, step, {"epoch": done, "position": 0})
        if stop:
            raise preempted(f"the end of epoch {done} (step {step})")
        every = config.eval.every_epochs
        if every and done % every == 0 and done < config.train.num_epochs:
            res = evals(trainer.model, trainer.eval_variables(state))
            writer.write(step, evaluators.log_scalars(res), prefix="eval/")
            first = evaluators.primary(res)
            say(f"epoch {done}: rank-1 {first['rank1']:.4f} mAP {first['mAP']:.4f}")
            best = _better(best, first, done, config)
    train_seconds = time.time() - t0

    picture = os.path.join(workdir, "ranked_list.png")
    events.write("evaluate")
    results = evals(trainer.model, trainer.eval_variables(state), picture if primary else None)
    writer.write(step, evaluators.log_scalars(results), prefix="eval/")
    best = _better(best, evaluators.primary(results), stop_at, config)
    if best is not None:
        writer.write(step, {k: v for k, v in best.items() if np.isscalar(v)}, prefix="best/")
    writer.close()
    events.write("end")
    paths["ranked_list"] = picture
    logged_rounds = plots.read_rounds(workdir) if primary else None  # resumed runs included
    if logged_rounds:
        paths["cluster_rounds"] = plots.cluster_rounds(
            {os.path.basename(os.path.normpath(workdir)): logged_rounds},
            os.path.join(workdir, "cluster_rounds.png"), title=f"{config.trainer}: clusters")
    return {
        "before": before,
        "before_evaluations": before_others,
        "before_label": before_label(config),
        "after": evaluators.primary(results),
        "best": best,
        "evaluations": results,
        "paths": paths,
        "state": state,
        "train_seconds": train_seconds,
        "epochs_done": stop_at,
        "rounds": rounds,
    }


class Events:
    """``workdir/events.log``: one timestamped line per phase of a run (start, each
    epoch's preparation or pseudo-label round, its steps, each checkpoint write and its end,
    preemption, evaluation, end), written by process 0 and flushed at once, so that after
    a crash the last line says what the run was doing."""

    def __init__(self, workdir: str, enabled: bool = True) -> None:
        self.path = os.path.join(workdir, "events.log")
        self.enabled = enabled

    def write(self, event: str) -> None:
        """Appends ``event`` with the time and this process's id."""
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(f"{time.time():.3f} {os.getpid()} {event}\n")


def save_pseudo_labels(workdir: str, epoch: int, labels: np.ndarray) -> str:
    """Writes a round's pseudo labels ([N] int32 over the training pictures, -1 left out)
    to ``workdir/pseudo_labels/round_NNN.npy``; returns the path."""
    folder = os.path.join(workdir, "pseudo_labels")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"round_{epoch + 1:03d}.npy")
    np.save(path, np.asarray(labels, np.int32))
    return path


def say(line: str) -> None:
    """Prints ``line`` on process 0 only."""
    if distributed.is_primary():
        print(line)


def before_label(config: ml_collections.ConfigDict) -> str:
    """What the evaluation before training measures: the untrained network, the weights it
    starts from, or (``data.source``) the source model's direct transfer."""
    if config.data.source:
        return "direct transfer (source model)"
    if config.model.init_from or config.model.init_from_run:
        return "initial weights"
    return "untrained"


def _better(
    best: dict | None, res: dict, epoch: int, config: ml_collections.ConfigDict
) -> dict | None:
    """``eval.select_best``: the evaluation with the higher mAP (ties: the later)."""
    if not config.eval.select_best:
        return None
    if best is None or res["mAP"] >= best["mAP"]:
        return {**{k: v for k, v in res.items() if k != "rows"}, "epoch": epoch}
    return best


def evaluate(
    config: ml_collections.ConfigDict, workdir: str, overrides: Collection[str] | None = None
) -> dict[str, Any]:
    """``--mode=eval``: restores the newest checkpoint of ``workdir``, runs the evaluators.

    Returns:
      {'before': None, 'after', 'evaluations', 'paths', 'state'} as :func:`train`.
    """
    trainer, ctx = build(config, for_eval=True, overrides=overrides)
    state = checkpoint.restore_for_eval(workdir, trainer.state, config)
    picture = os.path.join(workdir, "ranked_list.png")
    results = evaluators.Evaluators(config, ctx.mesh)(
        trainer.model, trainer.eval_variables(state),
        picture if distributed.is_primary() else None,
    )
    return {
        "before": None,
        "after": evaluators.primary(results),
        "evaluations": results,
        "paths": {"workdir": workdir, "ranked_list": picture},
        "state": state,
    }
