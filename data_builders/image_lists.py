"""From lists of files to TFDS splits: published-count checks, seeded protocols, examples.

A builder turns its download into one list of :class:`Item` per split (which file, whose
identity, which camera), then calls :func:`split_generators`, which checks the lists
against the counts in the builder config, decodes every image once (so that a broken
file stops the build before anything is written), and returns the TFDS generators that
yield :func:`common.make_example` dicts. Builders only describe their layout.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from data_builders import common, manual_files


@dataclasses.dataclass(frozen=True)
class Item:
    """One image of a split.

    Attributes:
      rel: its path relative to the :class:`manual_files.ManualFiles` root.
      person_id: the dataset's own identity number (0 distractor, where it has them).
      camera_id: 0-based camera index.
      file_name: the name stored in the example (default: ``rel``).
      tracklet_id: video datasets: the tracklet (sequence) index, else None.
      frame_id: video datasets: the frame index within the tracklet, else None.
    """

    rel: str
    person_id: int
    camera_id: int
    file_name: str | None = None
    tracklet_id: int | None = None
    frame_id: int | None = None


@dataclasses.dataclass
class ReidConfig(tfds.core.BuilderConfig):
    """A builder config with the published counts that the download must match.

    Fixture tests shrink these with ``dataclasses.replace(config, name=..., ...)``.

    Attributes:
      counts: split -> (images, identities); None skips that check.
      num_cameras: distinct cameras over all splits (None: not checked).
      num_test_ids: random-split protocols: identities held out for query/gallery.
      split_index: random-split protocols: the seed of the identity permutation.
      num_tracklets: video datasets: split -> tracklets (None skips the check).
    """

    counts: Mapping[str, tuple[int | None, int | None]] = dataclasses.field(default_factory=dict)
    num_cameras: int | None = None
    num_test_ids: int = 0
    split_index: int = 0
    num_tracklets: Mapping[str, int | None] = dataclasses.field(default_factory=dict)


def seeded_split(person_ids: Iterable[int], num_test_ids: int, split_index: int) -> tuple[list[int], list[int]]:
    """(train ids, test ids), each sorted, for random-split protocols.

    The sorted ids are permuted by ``np.random.default_rng(split_index).permutation`` and
    the first ``num_test_ids`` become the test identities. The small benchmarks (VIPeR,
    CUHK01, PRID, GRID without its file, iLIDS) ship no split file and every codebase
    draws its own (torchreid with an unseeded shuffle); this one is reproducible.
    """
    ids = np.asarray(sorted(set(int(p) for p in person_ids)))
    if not 0 < num_test_ids < len(ids):
        raise common.DatasetError(
            f"cannot hold out {num_test_ids} test identities from {len(ids)}; check the config."
        )
    perm = np.random.default_rng(split_index).permutation(ids)
    return sorted(int(p) for p in perm[num_test_ids:]), sorted(int(p) for p in perm[:num_test_ids])


def scan_folder(files: manual_files.ManualFiles, subdir: str, pattern: str, dataset: str,
                example: str, recursive: bool = False) -> list[tuple[str, re.Match]]:
    """Lists a folder and matches every file name against the dataset's pattern.

    Args:
      files: the download.
      subdir: the folder, relative to the download's top.
      pattern: a regular expression the whole base name must match.
      dataset: the dataset's name, for messages.
      example: a valid name, shown in the message for a file that does not match.
      recursive: include files in sub-folders (the pattern still sees the base name).

    Returns:
      [(relative path, match)] sorted by path.
    """
    regex = re.compile(pattern)
    out = []
    for rel in files.list(subdir):
        tail = rel[len(subdir.strip("/")) + 1:] if subdir else rel
        if "/" in tail and not recursive:
            raise common.DatasetError(
                f"{dataset}: unexpected sub-folder file {files.describe(rel)!r}; {subdir}/ holds "
                f"only image files like {example!r} (remove it or re-extract the archive)."
            )
        m = regex.fullmatch(rel.rsplit("/", 1)[-1])
        if m is None:
            raise common.DatasetError(
                f"{dataset}: unexpected file {files.describe(rel)!r}; names look like "
                f"{example!r} (remove the file or re-extract the archive)."
            )
        out.append((rel, m))
    return out


def random_split_configs(
    num_test_ids: int,
    counts: Mapping[str, tuple[int | None, int | None]],
    num_cameras: int | None,
    cls: type = ReidConfig,
    num_splits: int = 10,
    prefix: str = "s",
    **fields: object,
) -> list:
    """Configs ``<prefix>0`` .. ``<prefix>9`` of a random-split protocol (see :func:`seeded_split`)."""
    return [
        cls(
            name=f"{prefix}{k}",
            description=f"Random identity split {k}: np.random.default_rng({k}), {num_test_ids} test ids.",
            counts=dict(counts), num_cameras=num_cameras, num_test_ids=num_test_ids,
            split_index=k, **fields,
        )
        for k in range(num_splits)
    ]


def tracklet(frames: Sequence[str], person_id: int, camera_id: int, tracklet_id: int) -> list[Item]:
    """The items of one video tracklet: its frames in order, ``frame_id`` 0, 1, ..."""
    return [
        Item(rel, person_id, camera_id, tracklet_id=tracklet_id, frame_id=k)
        for k, rel in enumerate(frames)
    ]


def check_counts(dataset: str, config: ReidConfig, splits: Mapping[str, Sequence[Item]]) -> None:
    """Compares the split lists with ``config.counts`` and ``config.num_cameras``."""
    for split, (images, ids) in config.counts.items():
        items = splits.get(split, ())
        if images is not None:
            common.check_counts(dataset, f"{split} images", len(items), images)
        if ids is not None:
            common.check_counts(dataset, f"{split} identities", len({i.person_id for i in items}), ids)
    for split, tracklets in config.num_tracklets.items():
        if tracklets is not None:
            got = len({i.tracklet_id for i in splits.get(split, ())})
            common.check_counts(dataset, f"{split} tracklets", got, tracklets)
    if config.num_cameras is not None:
        cams = {i.camera_id for items in splits.values() for i in items}
        common.check_counts(dataset, "cameras", len(cams), config.num_cameras)


def check_images(files: manual_files.ManualFiles, items: Iterable[Item], dataset: str,
                 workers: int = 8) -> None:
    """Decodes every image once; the first broken one raises a DatasetError naming it."""
    for _ in manual_files.imap(lambda it: files.read_image(it.rel, dataset), items, workers):
        pass


def generate(files: manual_files.ManualFiles, items: Sequence[Item], dataset: str,
             labels: Mapping[int, int] | None = None, workers: int = 8,
             load: Callable[[Item], io.BytesIO] | None = None) -> Iterator[tuple[str, dict]]:
    """Yields (key, example) for TFDS, reading images on a thread pool.

    Args:
      files: where the images are.
      items: the split's images.
      dataset: the ``domain`` feature and the name in messages.
      labels: person_id -> training label (training splits); others get -1.
      workers: reader threads.
      load: returns an item's encoded image (default: read and check ``it.rel``).
    """
    labels = labels or {}
    load = load or (lambda it: files.read_image(it.rel, dataset))

    def example(it: Item) -> tuple[str, dict]:
        name = it.file_name or it.rel
        ex = common.make_example(
            load(it), it.person_id, it.camera_id, name, dataset,
            label=labels.get(it.person_id, -1), tracklet_id=it.tracklet_id, frame_id=it.frame_id,
        )
        return name, ex

    yield from manual_files.imap(example, items, workers)


def split_generators(
    files: manual_files.ManualFiles,
    splits: Mapping[str, Sequence[Item]],
    dataset: str,
    config: ReidConfig,
    train_splits: Sequence[str] = ("train",),
    check_decode: bool = True,
    workers: int = 8,
    load: Callable[[Item], io.BytesIO] | None = None,
) -> dict[str, Iterator[tuple[str, dict]]]:
    """Checks counts and images, then returns the generators TFDS writes.

    Args:
      files: where the images are.
      splits: split name -> its items.
      dataset: the dataset's name (``domain`` feature).
      config: the counts to check.
      train_splits: splits whose identities get contiguous ``label`` values.
      check_decode: decode every image before writing (set False only where a second
        pass would be too slow; a broken image still aborts the build, and TFDS then
        leaves no prepared dataset behind).
      workers: reader threads.
      load: a custom image reader (images not stored as files, e.g. CUHK03's .mat); it
        must check what it reads itself, the decode pass is skipped.
    """
    for name, items in splits.items():
        keys = [it.file_name or it.rel for it in items]
        if len(set(keys)) != len(keys):
            raise common.DatasetError(f"{dataset}: split {name!r} lists a file twice; check the download.")
    check_counts(dataset, config, splits)
    if check_decode and load is None:
        # An image may sit in several splits (e.g. VIPeR query/gallery); decode it once.
        unique = {it.rel: it for items in splits.values() for it in items}
        check_images(files, unique.values(), dataset, workers)
    return {
        name: generate(
            files, items, dataset,
            common.contiguous_labels(i.person_id for i in items) if name in train_splits else None,
            workers,
            load,
        )
        for name, items in splits.items()
    }


def info(builder: tfds.core.DatasetBuilder, description: str, homepage: str, citation: str,
         encoding_format: str = "jpeg", video: bool = False) -> tfds.core.DatasetInfo:
    """The DatasetInfo every re-ID builder returns from ``_info``."""
    return tfds.core.DatasetInfo(
        builder=builder,
        description=description,
        features=common.reid_features(encoding_format=encoding_format, video=video),
        homepage=homepage,
        citation=citation,
    )


class ManualBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the builders whose ``_split_generators`` return :func:`split_generators`.

    It only passes the prepared generators through ``_generate_examples`` (the hook
    TFDS requires) and fixes what all of them share; each subclass sets ``name``,
    configs, ``MANUAL_DOWNLOAD_INSTRUCTIONS``, ``_info`` and ``_split_generators``.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    # Threads that read and decode images (file I/O and zlib/libjpeg release the GIL).
    NUM_WORKERS = 8

    def _splits(self, files: manual_files.ManualFiles, splits: Mapping[str, Sequence[Item]],
                train_splits: Sequence[str] = ("train",), check_decode: bool = True,
                load: Callable[[Item], io.BytesIO] | None = None, workers: int | None = None) -> dict:
        """:func:`split_generators` for this builder (domain = ``self.name``)."""
        gens = split_generators(files, splits, self.name, self.builder_config, train_splits,
                                check_decode, workers or self.NUM_WORKERS, load)
        return {split: self._generate_examples(g) for split, g in gens.items()}

    def _generate_examples(self, examples: Iterator[tuple[str, dict]]) -> Iterator[tuple[str, dict]]:
        yield from examples

