"""Random-access re-ID splits read from prepared TFDS datasets (ArrayRecord, no TensorFlow).

A :class:`ReidData` is one split, or several (dataset, split) pairs mixed into one
training set: identity labels are made disjoint across sources and each example keeps
the index of the source (its domain). Metadata (ids, cameras, labels, and attribute
labels where the dataset has them) is read once without decoding images; images are
decoded on demand by index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from data_builders import registry
from reid_jax import errors

_META_CHUNK = 1024


@dataclasses.dataclass
class _Part:
    """One (dataset, split) pair inside a ReidData."""

    name: str
    records: object  # tfds ArrayRecordDataSource; its 'image' stays encoded (bytes)
    folder: str = ""  # the built dataset's folder, for messages


# What reading a damaged ArrayRecord file or decoding a damaged picture raises.
_READ_ERRORS = (RuntimeError, OSError, ValueError, SyntaxError, KeyError, IndexError,
                Image.DecompressionBombError)


def damaged(dataset: str, folder: str, what: str, e: BaseException) -> errors.ReidError:
    """The one-line error for a built dataset whose files no longer read."""
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    detail = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", detail)
    return errors.ReidError(
        f"{what} of the built dataset {dataset} in {folder} does not read ({detail}); "
        f"rebuild it: delete {folder} and run python -m reid_jax.data.build {dataset} "
        "(with --manual_dir if it was built from a download)."
    )


@dataclasses.dataclass
class ReidData:
    """One or several re-ID splits behind one index space.

    Attributes:
      name: 'dataset:split[+dataset:split...]', for messages.
      person_ids: [N] the datasets' own identity numbers (not made disjoint).
      labels: [N] training labels, disjoint across parts (-1 where the split has none).
      camera_ids: [N] camera index within its dataset.
      domains: [N] index of the part (source domain) each example comes from.
      file_names: [N] file names inside each archive.
      attributes: [N, M] int8 attribute labels (1 / 0, -1 unknown) when the parts that
        have the ``attributes`` feature agree on M (parts without it count as all
        unknown); None when no part has it or their M differ.
      tracklet_ids: [N] tracklet of each frame, made disjoint across parts (video
        datasets); -1 for single pictures.
      frame_ids: [N] position of each frame in its tracklet (video datasets); -1 for
        single pictures.
    """

    name: str
    parts: list[_Part]
    offsets: np.ndarray
    person_ids: np.ndarray
    labels: np.ndarray
    camera_ids: np.ndarray
    domains: np.ndarray
    file_names: list[str]
    attributes: np.ndarray | None = None
    tracklet_ids: np.ndarray | None = None
    frame_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def num_classes(self) -> int:
        """Number of distinct training labels (0 when the split has none)."""
        valid = self.labels[self.labels >= 0]
        return int(valid.max()) + 1 if valid.size else 0

    def digest(self) -> str:
        """A hash of what the examples are (name, size, labels, identities, cameras,
        file names): equal on every process reading the same data."""
        h = hashlib.sha256(f"{self.name}|{len(self)}".encode())
        for a in (self.labels, self.person_ids, self.camera_ids, self.domains):
            h.update(np.ascontiguousarray(a, np.int64).tobytes())
        h.update("|".join(self.file_names).encode())
        return h.hexdigest()[:16]

    def _damaged(self, index: int, e: BaseException) -> errors.ReidError:
        part = self.parts[int(np.searchsorted(self.offsets, index, side="right")) - 1]
        record = int(index - self.offsets[self.parts.index(part)])
        dataset, split = part.name.rsplit(":", 1)
        what = f"record {record} of split {split!r} ({self.file_names[index]})"
        return damaged(dataset, part.folder, what, e)

    def encoded(self, index: int) -> bytes:
        """The stored (PNG or JPEG) bytes of example ``index``'s picture.

        Raises:
          ReidError: the record does not read (a damaged file): names it and the fix.
        """
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        try:
            return self.parts[part].records[int(index - self.offsets[part])]["image"]
        except _READ_ERRORS as e:
            raise self._damaged(index, e) from None

    def picture(self, index: int) -> Image.Image:
        """Example ``index``'s picture as an RGB PIL image.

        Decoded here with PIL rather than by TFDS's image feature, whose decoding path
        costs 35 % more CPU per picture for the same pixels (benchmarks/input_pipeline.py).

        Raises:
          ReidError: the picture does not decode: names the record and the fix.
        """
        try:
            img = Image.open(io.BytesIO(self.encoded(index)))
            img.load()
            return img if img.mode == "RGB" else img.convert("RGB")
        except _READ_ERRORS as e:
            raise self._damaged(index, e) from None

    def image(self, index: int) -> np.ndarray:
        """Decoded uint8 HxWx3 picture of example ``index`` (a writable array)."""
        return np.array(self.picture(index))


def _builder(dataset: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    builder = registry.get_builder(dataset, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        raise errors.ReidError(
            f"dataset {dataset!r} is not built in {registry.data_dir_or_default(data_dir)!r}; "
            f"run: python -m reid_jax.data.build {dataset} --manual_dir DIR "
            "(DIR holds the official archive)."
        )
    # Datasets that need no download (the synthetic one) are built on first use.
    return registry.prepare(dataset, data_dir=data_dir)


def _read_metadata(
    raw: object, with_attributes: bool, with_tracklets: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray | None, np.ndarray,
           np.ndarray]:
    n = len(raw)
    pids, labels, cams, names, attrs, tracklets, frames = [], [], [], [], [], [], []
    for start in range(0, n, _META_CHUNK):
        for i, ex in enumerate(raw.__getitems__(list(range(start, min(n, start + _META_CHUNK))))):
            if ex is None or any(v is None for v in ex.values()):
                raise ValueError(f"record {start + i} is empty or incomplete")
            pids.append(ex["person_id"])
            labels.append(ex["label"])
            cams.append(ex["camera_id"])
            fn = ex["file_name"]
            names.append(fn.decode() if isinstance(fn, bytes) else str(fn))
            if with_attributes:
                attrs.append(ex["attributes"])
            tracklets.append(ex["tracklet_id"] if with_tracklets else -1)
            frames.append(ex["frame_id"] if with_tracklets else -1)
    as_i32 = lambda v: np.asarray(v, dtype=np.int32)  # noqa: E731
    attributes = np.asarray(attrs, np.int8).reshape(n, -1) if with_attributes else None
    return (as_i32(pids), as_i32(labels), as_i32(cams), names, attributes, as_i32(tracklets),
            as_i32(frames))


def _merge_attributes(parts: list[np.ndarray | None], sizes: list[int]) -> np.ndarray | None:
    """One [N, M] array over all parts; parts without attributes are all unknown (-1)."""
    widths = {a.shape[1] for a in parts if a is not None}
    if len(widths) != 1:  # no part has attributes, or their attribute sets differ
        return None
    m = widths.pop()
    return np.concatenate(
        [a if a is not None else np.full((size, m), -1, np.int8) for a, size in zip(parts, sizes)]
    )


def open_data(
    specs: Sequence[tuple[str, str]], data_dir: str | None = None, relabel: bool = True
) -> ReidData:
    """Opens (dataset, split) pairs as one ReidData.

    Args:
      specs: pairs such as [('cuhk01/p486_s0', 'train')] or several for a multi-source mix;
        the split 'all' takes every split of the dataset, identities labelled by person id.
      data_dir: TFDS data dir ('' or None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
      relabel: offset each part's labels so that they are disjoint across parts.

    Returns:
      The ReidData over all pairs, in order.
    """
    if not specs:
        raise errors.ReidError("no (dataset, split) given; set config.data.train / query / gallery.")
    data_dir = data_dir or None
    parts, pids, labels, cams, doms, names, attrs, sizes = [], [], [], [], [], [], [], [0]
    tracklets, frames = [], []
    label_offset = tracklet_offset = 0
    for domain, (dataset, split) in enumerate(specs):
        builder = _builder(dataset, data_dir)
        if split != ALL and split not in builder.info.splits:
            raise errors.ReidError(
                f"dataset {dataset!r} has no split {split!r}; its splits are "
                f"{', '.join(builder.info.splits)} (or {ALL!r}, every picture)."
            )
        features = builder.info.features
        first = len(pids)
        chosen = sorted(builder.info.splits) if split == ALL else [split]
        for one in chosen:
            try:
                raw = builder.as_data_source(one, decoders={"image": tfds.decode.SkipDecoding()})
                p, lab, c, fn, att, trk, frm = _read_metadata(
                    raw, "attributes" in features, "tracklet_id" in features
                )
            except (*_READ_ERRORS, TypeError) as e:
                raise damaged(dataset, str(builder.data_dir), f"split {one!r}", e) from None
            if (trk >= 0).any():
                trk = np.where(trk >= 0, trk + tracklet_offset, -1).astype(np.int32)
                tracklet_offset = int(trk.max()) + 1
            parts.append(_Part(f"{dataset}:{one}", raw, str(builder.data_dir)))
            for out, value in ((tracklets, trk), (frames, frm), (pids, p), (labels, lab),
                               (cams, c), (attrs, att)):
                out.append(value)
            doms.append(np.full(len(p), domain, np.int32))
            names.extend(fn)
            sizes.append(len(p))
        if split == ALL:  # identities of every split, labelled by person id
            labels[first:] = _labels_by_person(pids[first:], chosen)
        for i in range(first, len(labels)):
            if relabel and (labels[i] >= 0).any():
                labels[i] = np.where(labels[i] >= 0, labels[i] + label_offset, -1).astype(np.int32)
        if relabel and any((lab >= 0).any() for lab in labels[first:]):
            label_offset = int(max(lab.max() for lab in labels[first:])) + 1
    return ReidData(
        name="+".join(part.name for part in parts),
        parts=parts,
        offsets=np.cumsum(sizes),
        person_ids=np.concatenate(pids),
        labels=np.concatenate(labels),
        camera_ids=np.concatenate(cams),
        domains=np.concatenate(doms),
        file_names=names,
        attributes=_merge_attributes(attrs, sizes[1:]),
        tracklet_ids=np.concatenate(tracklets),
        frame_ids=np.concatenate(frames),
    )


ALL = "all"  # the split name of every picture of a dataset (MetaBIN's sources)


def _labels_by_person(pids: list[np.ndarray], splits: list[str]) -> list[np.ndarray]:
    """Labels 0..C-1 of the persons of several splits of one dataset, the same person the
    same label in every split; junk (-1) and, where the training splits have no person
    0, the test-time distractor marker 0 stay unlabelled (-1)."""
    everything = np.concatenate(pids)
    keep = everything >= 0
    train_zero = any((p == 0).any() for p, name in zip(pids, splits) if name.startswith("train"))
    if not train_zero and (everything == 0).any():  # 0 marks distractors
        keep &= everything != 0
    ids = np.unique(everything[keep])
    return [np.where(np.isin(p, ids), np.searchsorted(ids, p), -1).astype(np.int32)
            for p in pids]


def hide_labels(data: ReidData, first_domain: int) -> ReidData:
    """A copy of ``data`` whose parts from ``first_domain`` on are unlabeled (label -1).

    Used for LSRO's extra images (Zheng et al., ICCV 2017): generated or unlabeled
    pictures that enter training with a uniform identity target. They must be the last
    parts so the labelled parts keep labels 0..C-1.
    """
    labels = np.where(data.domains >= first_domain, -1, data.labels).astype(np.int32)
    return dataclasses.replace(data, labels=labels)


def parse_specs(spec: str | Sequence[str], default_dataset: str) -> list[tuple[str, str]]:
    """Parses 'split' or 'dataset:split' entries (comma-separated string or list).

    >>> parse_specs('train', 'cuhk01/p486_s0')
    [('cuhk01/p486_s0', 'train')]
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        if not item:
            continue
        dataset, sep, split = item.rpartition(":")
        out.append((dataset if sep else default_dataset, split))
    return out


def spec_string(spec: str | Sequence[str], default_dataset: str) -> str:
    """'dataset:split,...' with every dataset spelled out (two specs naming the same
    pictures compare equal).

    >>> spec_string('train', 'cuhk01/p486_s0')
    'cuhk01/p486_s0:train'
    """
    return ",".join(f"{d}:{s}" for d, s in parse_specs(spec, default_dataset))


def open_train(data_cfg: object, extra: str = "") -> ReidData:
    """The training pictures of ``config.data`` (``data.train``), then ``extra`` unlabeled.

    Args:
      data_cfg: config.data (``dataset``, ``train``, ``data_dir``).
      extra: comma-separated 'dataset:split' parts appended with label -1 (LSRO's
        generated pictures); the labelled parts keep labels 0..C-1.
    """
    labeled = parse_specs(data_cfg.train, data_cfg.dataset)
    more = parse_specs(extra, data_cfg.dataset)
    train = open_data(labeled + more, data_cfg.data_dir)
    return hide_labels(train, first_domain=len(labeled)) if more else train

