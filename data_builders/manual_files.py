"""The files of a manual download, read from an extracted folder or straight from a zip.

Re-ID datasets are downloaded by hand (their terms forbid redistribution), so a builder
meets them in whatever shape the user left them: the archive's top folder, the folder
holding it, or the zip itself. :func:`locate` finds the dataset's top folder (the
*anchor*, e.g. ``campus`` for CUHK01, ``bounding_box_train``'s parent for Market-1501)
in any of those shapes and returns a :class:`ManualFiles` that lists and reads files by
their path relative to that folder. Zip members are read one at a time (the archive is
never extracted or loaded whole), and :func:`imap` reads many files on a bounded thread
pool so that large datasets stream through memory.
"""

from __future__ import annotations

import collections
import concurrent.futures
import io
import os
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from data_builders import common

_T = TypeVar("_T")
_R = TypeVar("_R")

# Entries every OS or archiver leaves behind; they are not part of any dataset.
_IGNORED_PARTS = ("__MACOSX",)


def _ignored(rel: str) -> bool:
    parts = rel.split("/")
    return any(p.startswith(".") or p in _IGNORED_PARTS for p in parts) or parts[-1] == "Thumbs.db"


class ManualFiles:
    """Files below one folder of a manual download, addressed by relative POSIX paths.

    Attributes:
      where: the folder (or ``archive.zip!prefix``) the relative paths start from, for
        messages.
    """

    def __init__(self, root: str, zip_path: str | None = None, prefix: str = "") -> None:
        """Use :func:`locate` rather than this constructor.

        Args:
          root: the folder, when reading an extracted download.
          zip_path: the archive, when reading a zip (``root`` is then ignored).
          prefix: member-name prefix of the anchor folder inside the zip ('' or ending in '/').
        """
        self._root = root
        self._zip_path = zip_path
        self._prefix = prefix
        self._local = threading.local()
        self.where = f"{zip_path}!{prefix}" if zip_path else root

    def _zip(self) -> zipfile.ZipFile:
        # One handle per thread: reads through one shared handle would serialize.
        zf = getattr(self._local, "zf", None)
        if zf is None:
            zf = self._local.zf = zipfile.ZipFile(self._zip_path)
        return zf

    def list(self, subdir: str = "") -> list[str]:
        """Sorted relative paths of all files below ``subdir`` ('' = everything)."""
        base = subdir.strip("/")
        if self._zip_path:
            start = self._prefix + (base + "/" if base else "")
            names = [
                n[len(self._prefix):]
                for n in self._names()
                if n.startswith(start) and not n.endswith("/")
            ]
        else:
            top = os.path.join(self._root, base) if base else self._root
            names = []
            for dirpath, _, files in os.walk(top):
                rel_dir = os.path.relpath(dirpath, self._root).replace(os.sep, "/")
                for f in files:
                    names.append(f if rel_dir == "." else f"{rel_dir}/{f}")
        return sorted(n for n in names if not _ignored(n))

    def exists(self, rel: str) -> bool:
        """Whether the relative file or folder exists."""
        if self._zip_path:
            name = self._prefix + rel.strip("/")
            return any(n == name or n.startswith(name + "/") for n in self._names())
        return os.path.exists(os.path.join(self._root, rel))

    def _names(self) -> list[str]:
        names = getattr(self, "_namelist", None)
        if names is None:
            names = self._namelist = self._zip().namelist()
        return names

    def describe(self, rel: str) -> str:
        """The full location of a relative path, for messages."""
        if self._zip_path:
            return f"{self._zip_path}!{self._prefix}{rel}"
        return os.path.join(self._root, rel)

    def local_path(self, rel: str, dataset: str) -> str:
        """A filesystem path for libraries that need one (HDF5); zips must be extracted."""
        if self._zip_path:
            raise common.DatasetError(
                f"{dataset}: {self.describe(rel)!r} must be read from disk; extract "
                f"{os.path.basename(self._zip_path)} into the manual_dir."
            )
        return self._inside(rel)

    def _inside(self, rel: str) -> str:
        """The path of ``rel``; DatasetError when it (through a symbolic link) leads
        outside the folder: a download is read only from where the user put it."""
        path = os.path.join(self._root, rel)
        real, top = os.path.realpath(path), os.path.realpath(self._root)
        if os.path.commonpath([real, top]) != top:
            raise common.DatasetError(
                f"{path!r} is a link to {real!r}, outside {self._root!r}; links leading out "
                "of the manual_dir are not followed: copy the file into it instead."
            )
        return path

    def read(self, rel: str) -> bytes:
        """The bytes of one file (never through a link leading outside the folder)."""
        if self._zip_path:
            return self._zip().read(self._prefix + rel)
        with open(self._inside(rel), "rb") as f:
            return f.read()

    def read_image(self, rel: str, dataset: str) -> io.BytesIO:
        """Reads one image and checks that it decodes (see :func:`common.image_from_bytes`)."""
        try:
            data = self.read(rel)
        except (OSError, KeyError, zipfile.BadZipFile) as e:
            raise common.DatasetError(
                f"{dataset}: cannot read {self.describe(rel)!r} ({e}); re-extract the archive."
            ) from e
        return common.image_from_bytes(data, self.describe(rel), dataset)


def _zip_prefix(zip_path: str, anchor: str, dataset: str) -> str | None:
    """Member path of ``anchor`` (a folder or file) inside a zip, plus '/'; None if absent."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile) as e:
        raise common.DatasetError(
            f"{dataset}: cannot open {zip_path!r} ({e}); download the archive again."
        ) from e
    want = anchor.strip("/").split("/")
    for n in names:
        if _ignored(n):
            continue
        parts = n.split("/")
        for i in range(len(parts) - len(want) + 1):
            if parts[i:i + len(want)] == want:
                return "/".join(parts[: i + len(want)]) + "/"
    return None


def locate(
    manual_dir: str,
    dataset: str,
    anchor: str,
    zip_names: Sequence[str],
    expected: str,
    accept_anchor_itself: bool = True,
) -> ManualFiles:
    """Finds the dataset's anchor folder in a manual_dir.

    Looked for, in order: ``manual_dir/<anchor>/``; ``manual_dir`` itself when its name
    is ``anchor``; an archive ``manual_dir/<zip_name>`` holding an ``<anchor>/`` folder
    at any depth (or, for a zip named ``<anchor>.zip``, holding the files at its top).

    Args:
      manual_dir: the folder the user passed as --manual_dir.
      dataset: the dataset's name, for messages.
      anchor: the folder name that identifies the dataset's top (e.g. 'campus').
      zip_names: archive names to look for, as distributed (e.g. 'CUHK01.zip').
      expected: what the user should have, for messages.
      accept_anchor_itself: accept ``manual_dir`` whose own name is ``anchor``.

    Returns:
      The files below the anchor folder, addressed relative to it.
    """
    manual_dir = common.require_dir(manual_dir, dataset, expected)
    inside = os.path.join(manual_dir, anchor)
    if os.path.isdir(inside):
        return ManualFiles(inside)
    if accept_anchor_itself and os.path.basename(os.path.normpath(manual_dir)) == anchor:
        return ManualFiles(manual_dir)
    for name in zip_names:
        zip_path = os.path.join(manual_dir, name)
        if not os.path.isfile(zip_path):
            continue
        prefix = _zip_prefix(zip_path, anchor, dataset)
        if prefix is None and os.path.splitext(name)[0] == anchor:
            prefix = ""
        if prefix is None:
            raise common.DatasetError(
                f"{dataset}: {zip_path!r} holds no {anchor}/ folder; expected {expected}."
            )
        return ManualFiles(manual_dir, zip_path=zip_path, prefix=prefix)
    raise common.DatasetError(
        f"{dataset}: no {anchor}/ folder (nor {' or '.join(zip_names)}) in {manual_dir!r}; "
        f"expected {expected}."
    )


def locate_root(
    manual_dir: str,
    dataset: str,
    markers: Sequence[str],
    zip_names: Sequence[str],
    expected: str,
    depth: int = 2,
) -> ManualFiles:
    """Finds the dataset's top folder: the one that holds ``markers[0]``.

    Looked for in ``manual_dir`` itself, then in its sub-folders down to ``depth``
    levels (sorted; a folder holding every marker wins over one holding only the
    first), then inside the archives ``zip_names`` (at any depth). Every other marker
    must then exist below the same top folder.

    Args:
      manual_dir: the folder the user passed as --manual_dir.
      dataset: the dataset's name, for messages.
      markers: relative folders (or files) the top folder holds, e.g.
        ('bounding_box_train', 'query', 'bounding_box_test').
      zip_names: archive names as distributed.
      expected: what the user should have, for messages.
      depth: how deep below manual_dir to look.

    Returns:
      The files below the top folder, addressed relative to it.
    """
    manual_dir = common.require_dir(manual_dir, dataset, expected)
    found = None
    frontier = [manual_dir]
    for _ in range(depth + 1):
        holding = [d for d in frontier if os.path.exists(os.path.join(d, markers[0]))]
        # Prefer a folder that holds every marker (e.g. MSMT17_V2 beside MSMT17_V1);
        # else the first one, whose missing marker is then reported.
        complete = [d for d in holding if all(os.path.exists(os.path.join(d, m)) for m in markers)]
        if holding:
            found = ManualFiles((complete or holding)[0])
            break
        frontier = [
            os.path.join(d, e.name)
            for d in frontier
            for e in sorted(os.scandir(d), key=lambda e: e.name)
            if e.is_dir() and not _ignored(e.name)
        ]
    if found is None:
        for name in zip_names:
            zip_path = os.path.join(manual_dir, name)
            if os.path.isfile(zip_path):
                prefix = _zip_prefix(zip_path, markers[0], dataset)
                if prefix is not None:
                    parent = prefix[: -len(markers[0]) - 1]
                    found = ManualFiles(manual_dir, zip_path=zip_path, prefix=parent)
                    break
    if found is None:
        raise common.DatasetError(
            f"{dataset}: no folder holding {markers[0]}/ in {manual_dir!r} (nor in "
            f"{' or '.join(zip_names)}); expected {expected}."
        )
    for m in markers[1:]:
        if not found.exists(m):
            raise common.DatasetError(
                f"{dataset}: {found.describe(m)!r} is missing; expected {expected} "
                "(re-extract the archive)."
            )
    return found


def imap(fn: Callable[[_T], _R], items: Iterable[_T], workers: int = 8,
         window: int = 256) -> Iterator[_R]:
    """``map(fn, items)`` on a thread pool, in order, with at most ``window`` pending.

    File reads and PNG/JPEG decoding release the GIL, so threads overlap them; the
    window bounds the memory held by results that wait for their turn.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending: collections.deque[concurrent.futures.Future] = collections.deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            # On an error (or an abandoned generator) do not wait for work nobody reads.
            for fut in pending:
                fut.cancel()
