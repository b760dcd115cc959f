"""Preemption: SIGTERM asks a training run to checkpoint and stop.

Pods, SLURM and most schedulers send SIGTERM some time before they kill a job. While a
run trains (:func:`handling`), the first SIGTERM only sets a flag; the run loop checks
it at the next step boundary, writes a checkpoint of exactly where it stands (mid-epoch
included) and stops with :class:`Preempted`, which ``reid_jax.main`` prints as one line
saying how to resume, with exit status 0. A second SIGTERM exits at once with status
143: Orbax's write-then-rename means the last complete checkpoint is never damaged, only
the one being written is lost.

With several processes every process must stop at the same step, so the flag is agreed
(``distributed.any_process``) at checkpoint steps, logging steps and epoch ends only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

from reid_jax import distributed

_requested = threading.Event()


class Preempted(Exception):  # noqa: N818 (not an error: a requested stop)
    """The run stopped on SIGTERM after saving a checkpoint; the message says where."""


def _on_signal(signum: int, frame: object) -> None:
    if _requested.is_set():  # the second signal: stop now
        os._exit(128 + signum)
    _requested.set()


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Within the block, SIGTERM requests a stop at the next step boundary instead of
    killing the process (a no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
    previous = signal.signal(signal.SIGTERM, _on_signal)
    try:
        yield
    finally:
        if not _requested.is_set():  # after a SIGTERM, a second one still exits at once
            signal.signal(signal.SIGTERM, previous)


def requested() -> bool:
    """Whether this process received SIGTERM (no collective)."""
    return _requested.is_set()


def agreed(check: bool = True) -> bool:
    """Whether the run should stop now: this process's flag when single-process; with
    several processes, any process's flag at agreed points (``check`` must be the same
    on every process), False elsewhere."""
    if not check:
        return False
    return distributed.any_process(requested())
