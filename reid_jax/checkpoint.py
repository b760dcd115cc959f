"""Orbax checkpoints of the TrainState, with the epoch and a fingerprint of the config.

Orbax writes each checkpoint into a temporary folder and renames it when complete, so
an interrupted save (a kill, a full disk) never replaces a good checkpoint: the newest
complete one is what a run resumes from, and older ones are deleted only after a newer
one is complete. One run at a time writes a workdir (:func:`lock`). A workdir's checkpoints are tied to
the config that wrote them: resuming under a config whose fingerprint differs is refused
(run-control keys such as the number of epochs to stop after, logging and evaluation
settings are left out of the fingerprint, since they do not change the trained state).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import ml_collections
import orbax.checkpoint as ocp

from reid_jax import errors

# Version of what a checkpoint holds. 2: every trainer's state is a dataclass whose
# 'train' field is the common TrainState (reid_jax/train/state.py). Checkpoints of an
# older layout are refused with a message instead of failing inside Orbax.
FORMAT_VERSION = 2
# Config keys that may change between a run and its resumption.
_RUN_CONTROL_KEYS = (
    "train.stop_after_epochs",
    "train.log_every_steps",
    "train.checkpoint_every_epochs",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.progress",
    "eval",
    "data.query",  # the test sets: a checkpoint may be evaluated on others
    "data.gallery",
    "data.data_dir",
    "data.manual_dir",
    "data.num_threads",
    "num_devices",
)


def fingerprint(config: ml_collections.ConfigDict) -> str:
    """A short hash of the config minus run-control keys."""
    d = json.loads(config.to_json_best_effort(sort_keys=True))
    for key in _RUN_CONTROL_KEYS:
        node, *rest = key.split(".")
        if not rest:
            d.pop(node, None)
        elif isinstance(d.get(node), dict):
            d[node].pop(rest[0], None)
    blob = json.dumps(d, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def manager(workdir: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
    """A synchronous CheckpointManager over ``workdir/checkpoints`` (items: state, meta),
    keeping the ``max_to_keep`` newest checkpoints (numbered by training step)."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"),
        options=options,
        item_names=("state", "meta"),
    )


def save(mngr: ocp.CheckpointManager, step: int, state: Any, meta: dict) -> None:
    """Saves ``state`` (a pytree of arrays) and ``meta`` (JSON, plus the format version).

    Raises:
      ReidError: the storage failed (full disk, quota, read-only); the message says that
        the previous checkpoint is intact.
    """
    meta = {**meta, "format_version": FORMAT_VERSION}
    # A failed write makes Orbax's and TensorStore's threads print tracebacks of their own;
    # what they print during the save is held back and shown only when the failure is
    # not a storage error this function reports in one line.
    with tempfile.TemporaryFile() as held:
        try:
            with _stderr_to(held):
                mngr.save(
                    step,
                    args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                            meta=ocp.args.JsonSave(meta)),
                    force=True,
                )
                mngr.wait_until_finished()
        except Exception as e:  # noqa: BLE001 (Orbax re-raises storage errors in several types)
            cause = _storage_error(e)
            if cause is None:
                _replay(held)
                raise
            mngr.reload()
            previous = [s for s in mngr.all_steps() if s != step]
            kept = (f"the previous checkpoint (step {max(previous)}) is intact" if previous
                    else "no earlier checkpoint exists")
            raise errors.ReidError(
                f"cannot write checkpoint step {step} to {mngr.directory} ({cause}); {kept}: "
                "free space (or fix the storage) and run the same command to resume."
            ) from None
        _replay(held)


@contextlib.contextmanager
def _stderr_to(file: Any) -> Iterator[None]:
    """Points file descriptor 2 (every thread's and library's stderr) at ``file``."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _replay(file: Any) -> None:
    """Writes what ``file`` holds to stderr."""
    file.seek(0)
    data = file.read()
    if data:
        os.write(2, data)


def _storage_error(e: BaseException) -> str | None:
    """A short description when ``e`` (or an exception it wraps) is a storage failure."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS,
                                                   errno.EFBIG, errno.EIO):
            return os.strerror(e.errno)
        text = str(e)
        for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            if os.strerror(code) in text:  # tensorstore reports errno text in its message
                return os.strerror(code)
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


LOCK_FILE = ".reid_jax.lock"


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
    """Holds ``workdir``'s lock while training: a second run started in the same workdir
    is refused instead of writing the same checkpoints. The lock (``flock``) dies with
    the process, so a killed run never leaves the workdir locked.

    Raises:
      ReidError: another live process holds the lock.
    """
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise errors.ReidError(
                f"another run (pid {holder}) is training in --workdir {workdir}; wait for it "
                "to end or use another --workdir."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_format(mngr: ocp.CheckpointManager, step: int, what: str = "") -> dict:
    """The metadata of checkpoint ``step``; ReidError if an older reid_jax wrote it."""
    meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    version = meta.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise errors.ReidError(
            f"{what or mngr.directory} holds a checkpoint of format {version} (an older "
            f"reid_jax); this version reads format {FORMAT_VERSION}: train again in a new "
            "--workdir."
        )
    return meta


def restore_latest(
    mngr: ocp.CheckpointManager, target: Any, config: ml_collections.ConfigDict
) -> tuple[Any, dict] | None:
    """Restores the newest checkpoint into the structure and shardings of ``target``.

    Returns:
      (state, meta) or None when the workdir holds no checkpoint.

    Raises:
      ReidError: the checkpoint was written under a different config.
    """
    step = mngr.latest_step()
    if step is None:
        return None
    meta = check_format(mngr, step)
    want = fingerprint(config)
    if meta.get("config_fingerprint") != want:
        raise errors.ReidError(
            f"{mngr.directory} holds a checkpoint written by a different config "
            f"(fingerprint {meta.get('config_fingerprint')} != {want}); use a new --workdir, "
            "or the config that wrote it (see config.json there)."
        )
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    return restored["state"], meta


def restore_for_eval(workdir: str, target: Any, config: ml_collections.ConfigDict) -> Any:
    """``--mode=eval``: the newest checkpoint of ``workdir`` restored into ``target``.

    Raises:
      ReidError: the workdir holds no checkpoint, or one from another config.
    """
    restored = restore_latest(manager(workdir), target, config)
    if restored is None:
        raise errors.ReidError(
            f"{workdir!r} holds no checkpoint; train first with --mode=train --workdir {workdir}."
        )
    return restored[0]
