"""A re-ID dataset from any folder of images, described by a file-name pattern or a CSV.

The images stay where they are (the manual_dir); what identifies them is either

- ``pattern``: a regular expression that must match the whole path of every image
  (relative to the manual_dir, ``/``-separated). Named groups: ``pid`` (required, the
  person number), ``cam`` (the camera number, made 0-based by ``camera_base``) or,
  instead, groups ``cam0``, ``cam1``, ... of which the one that takes part in the match
  gives the camera (so that several file-name codes map onto one camera without a
  table), and optionally ``split`` (a folder or code that names the split, see
  ``SPLIT_NAMES``). An image file (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``) that does
  not match is an error; other files (READMEs) are ignored.
- ``csv``: a CSV file in the manual_dir with a header and the columns ``path``,
  ``person_id``, ``camera_id`` and optionally ``split``; ``path`` is relative to the
  manual_dir. Every listed file must exist.

Splits: with a split column/group the examples go where it says (train, query,
gallery); otherwise ``num_test_ids`` > 0 holds out that many identities with the seeded
protocol of ``image_lists.seeded_split`` (``np.random.default_rng(split_index)``): test
images from camera ``query_camera`` form the query, those from the other cameras the
gallery; with ``num_test_ids`` = 0 every image is training data.

The real CUHK01 builds from a pattern alone, with the same splits as ``cuhk01/p486_s0``::

  python -m reid_jax.data.build custom_folder --manual_dir ../shared/data/cuhk01 \\
    --config_name cuhk01_by_pattern --domain cuhk01 --num_test_ids 486 \\
    --pattern 'campus/(?P<pid>\\d{4})(?:(?P<cam0>00[12])|(?P<cam1>00[34]))\\.png'
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# Split names as they appear in folders and files -> the split they mean.
SPLIT_NAMES = {
    "train": "train", "bounding_box_train": "train", "training": "train",
    "query": "query", "probe": "query",
    "gallery": "gallery", "bounding_box_test": "gallery", "test": "gallery",
}


@dataclasses.dataclass
class CustomConfig(image_lists.ReidConfig):
    """How to read the folder (see the module docstring).

    Attributes:
      pattern: regular expression over relative paths ('' when ``csv`` is used).
      csv: CSV file name in the manual_dir ('' when ``pattern`` is used).
      domain: the ``domain`` feature of every example (the dataset's name).
      camera_base: subtracted from a ``cam`` group (1 for cameras numbered from 1).
      query_camera: random protocol: the camera whose test images form the query.
      encoding_format: 'jpeg' or 'png', recorded in the feature spec.
    """

    pattern: str = ""
    csv: str = ""
    domain: str = "custom"
    camera_base: int = 1
    query_camera: int = 0
    encoding_format: str = "jpeg"


def _split_name(value: str, where: str) -> str:
    if value.lower() not in SPLIT_NAMES:
        raise common.DatasetError(
            f"custom_folder: {where} names split {value!r}; use one of {sorted(set(SPLIT_NAMES))}."
        )
    return SPLIT_NAMES[value.lower()]


def items_from_pattern(files: manual_files.ManualFiles, cfg: CustomConfig) -> list[tuple[image_lists.Item, str]]:
    """[(item, split or '')] for every image under the manual_dir."""
    try:
        regex = re.compile(cfg.pattern)
    except re.error as e:
        raise common.DatasetError(f"custom_folder: the pattern {cfg.pattern!r} is not a regular expression ({e}).") from e
    if "pid" not in regex.groupindex:
        raise common.DatasetError("custom_folder: the pattern needs a named group (?P<pid>...) for the person.")
    cam_groups = sorted((int(g[3:]), g) for g in regex.groupindex if re.fullmatch(r"cam\d+", g))
    out = []
    for rel in files.list():
        if not rel.lower().endswith(IMAGE_SUFFIXES):
            continue
        m = regex.fullmatch(rel)
        if m is None:
            raise common.DatasetError(
                f"custom_folder: image {files.describe(rel)!r} does not match the pattern {cfg.pattern!r}; "
                "fix the pattern or move the file out of the manual_dir."
            )
        if "cam" in regex.groupindex:
            cam = int(m.group("cam")) - cfg.camera_base
        elif cam_groups:
            cam = next((k for k, g in cam_groups if m.group(g) is not None), None)
            if cam is None:
                raise common.DatasetError(f"custom_folder: no cam<k> group took part in matching {rel!r}.")
        else:
            cam = 0
        split = _split_name(m.group("split"), repr(rel)) if "split" in regex.groupindex else ""
        out.append((image_lists.Item(rel, int(m.group("pid")), cam), split))
    return out


def items_from_csv(files: manual_files.ManualFiles, cfg: CustomConfig) -> list[tuple[image_lists.Item, str]]:
    """[(item, split or '')] for every row of the CSV."""
    if not files.exists(cfg.csv):
        raise common.DatasetError(f"custom_folder: the CSV {files.describe(cfg.csv)!r} does not exist.")
    text = files.read(cfg.csv).decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    missing = {"path", "person_id", "camera_id"} - set(reader.fieldnames or ())
    if missing:
        raise common.DatasetError(
            f"custom_folder: {files.describe(cfg.csv)!r} lacks the column(s) {sorted(missing)}; the header "
            "is path,person_id,camera_id[,split]."
        )
    present = set(files.list())
    out = []
    for n, row in enumerate(reader, 2):
        rel = row["path"].strip().replace(os.sep, "/")
        try:
            pid, cam = int(row["person_id"]), int(row["camera_id"])
        except ValueError:
            raise common.DatasetError(f"custom_folder: line {n} of {cfg.csv}: person_id and camera_id must be integers.") from None
        if rel not in present:
            raise common.DatasetError(f"custom_folder: line {n} of {cfg.csv} lists {files.describe(rel)!r}, which is missing.")
        split = _split_name(row["split"].strip(), f"line {n} of {cfg.csv}") if row.get("split") else ""
        out.append((image_lists.Item(rel, pid, cam), split))
    return out


class Builder(image_lists.ManualBuilder):
    """Any folder of person images; give a ``CustomConfig`` (the CLI builds one from flags)."""

    name = "custom_folder"
    BUILDER_CONFIGS = [CustomConfig(name="default", description="Set pattern or csv to use this builder.")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Pass the folder holding the images as the manual_dir, and describe it with a
    file-name pattern or a CSV (see the builder's docstring).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(self, __doc__, "", "", encoding_format=self.builder_config.encoding_format)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        if bool(cfg.pattern) == bool(cfg.csv):
            raise common.DatasetError("custom_folder: give exactly one of a file-name pattern and a CSV file.")
        root = common.manual_dir(dl_manager, cfg.domain, "a folder of person images")
        files = manual_files.ManualFiles(root)
        tagged = items_from_pattern(files, cfg) if cfg.pattern else items_from_csv(files, cfg)
        if not tagged:
            raise common.DatasetError(f"custom_folder: no images found in {root!r}.")
        if any(split for _, split in tagged):
            if not all(split for _, split in tagged):
                raise common.DatasetError("custom_folder: some images have a split and others do not.")
            splits: dict[str, list[image_lists.Item]] = {}
            for it, split in tagged:
                splits.setdefault(split, []).append(it)
        elif cfg.num_test_ids:
            items = [it for it, _ in tagged]
            _, test_ids = image_lists.seeded_split((it.person_id for it in items), cfg.num_test_ids,
                                                   cfg.split_index)
            test = set(test_ids)
            splits = {
                "train": [it for it in items if it.person_id not in test],
                "query": [it for it in items if it.person_id in test and it.camera_id == cfg.query_camera],
                "gallery": [it for it in items if it.person_id in test and it.camera_id != cfg.query_camera],
            }
        else:
            splits = {"train": [it for it, _ in tagged]}
        gens = image_lists.split_generators(files, splits, cfg.domain, cfg, workers=self.NUM_WORKERS)
        return {split: self._generate_examples(g) for split, g in gens.items()}
