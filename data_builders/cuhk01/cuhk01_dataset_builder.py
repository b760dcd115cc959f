"""CUHK01 (Li, Zhao, Wang, "Human Reidentification with Transferred Metric Learning", ACCV 2012).

971 identities seen by two disjoint campus cameras, 4 images each (2 per camera),
3,884 PNG files named ``campus/PPPPIII.png``: ``PPPP`` is the person (0001..0971),
``III`` the image; 001-002 come from camera A (``camera_id`` 0), 003-004 from camera B
(``camera_id`` 1). torchreid reads the same layout and camera rule
(``camid = (int(name[4:7]) - 1) // 2`` in KaiyangZhou/deep-person-reid,
``torchreid/data/datasets/image/cuhk01.py``).

Protocols. The dataset ships no split file, so every codebase draws its own random
identity splits: torchreid shuffles with an unseeded ``np.random.shuffle`` into
971 // 2 = 485 train / 486 test ids, 10 times, and stores them in a ``splits.json``
(it also adds the reversed camera direction as extra splits). Ours are reproducible
without a file: for split ``k`` the sorted person ids are permuted by
``np.random.default_rng(k).permutation``, the first ``num_test_ids`` of the permutation
are the test identities and the rest train. Configs:

- ``p486_s0`` .. ``p486_s9``: 485 train / 486 test ids (the usual protocol, default).
- ``p100_s0`` .. ``p100_s9``: 871 train / 100 test ids. The same permutation is used,
  so the 100 test ids of ``p100_sk`` are among the 486 of ``p486_sk``.

Splits: ``train`` (train ids, all 4 images, contiguous ``label``), ``query`` (test ids,
camera A) and ``gallery`` (test ids, camera B). Every count is checked and every image
decoded before anything is written.
"""

from __future__ import annotations

import dataclasses
import re

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "cuhk01"
_ANCHOR = "campus"
_ZIP_NAMES = ("CUHK01.zip", "campus.zip")
_PATTERN = re.compile(r"^(\d{4})(\d{3})\.png$")
_EXPECTED = "campus/0001001.png ... campus/0971004.png (3,884 PNG files)"


@dataclasses.dataclass
class Cuhk01Config(image_lists.ReidConfig):
    """One identity protocol and random split, plus the counts the download must have.

    Attributes:
      num_test_ids: identities in query/gallery (486 or 100); the rest train.
      split_index: seeds the identity permutation (``np.random.default_rng(split_index)``).
      num_ids: identities in the download (971 published).
      images_per_camera: images per identity and camera (2 published).
    """

    num_test_ids: int = 486
    split_index: int = 0
    num_ids: int = 971
    images_per_camera: int = 2


def _configs() -> list[Cuhk01Config]:
    out = []
    for num_test in (486, 100):
        for k in range(10):
            out.append(
                Cuhk01Config(
                    name=f"p{num_test}_s{k}",
                    description=(
                        f"{971 - num_test} train / {num_test} test identities, random split {k} "
                        f"(np.random.default_rng({k}))."
                    ),
                    num_test_ids=num_test,
                    split_index=k,
                )
            )
    return out


def parse_name(name: str, dataset: str = DOMAIN) -> tuple[int, int]:
    """(person_id, camera_id) from a file name like '0001003.png'.

    Raises:
      DatasetError: the name does not follow the CUHK01 pattern.
    """
    m = _PATTERN.match(name)
    if not m or not 1 <= int(m.group(2)) <= 4:
        raise common.DatasetError(
            f"{dataset}: unexpected file {name!r} in campus/; expected names PPPPIII.png with "
            "III in 001..004 (remove the file or re-extract the archive)."
        )
    return int(m.group(1)), (int(m.group(2)) - 1) // 2


def identity_split(person_ids: list[int], num_test_ids: int, split_index: int) -> tuple[list[int], list[int]]:
    """(train ids, test ids), both sorted: see the module docstring for the seed scheme."""
    return image_lists.seeded_split(person_ids, num_test_ids, split_index)


class Builder(image_lists.ManualBuilder):
    """CUHK01 from a manual download (``campus/`` or ``CUHK01.zip``)."""

    name = "cuhk01"
    RELEASE_NOTES = {"1.0.0": "First release: 2 protocols x 10 seeded random splits."}
    BUILDER_CONFIGS = _configs()
    DEFAULT_CONFIG_NAME = "p486_s0"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    CUHK01 is distributed by its authors on request for research use
    (http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html). Put either the
    archive `CUHK01.zip` (or `campus.zip`) or its extracted `campus/` folder
    (3,884 files 0001001.png .. 0971004.png) into the manual_dir, or pass the
    `campus/` folder itself as the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=common.reid_features(encoding_format="png"),
            homepage="http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html",
            citation=(
                "@inproceedings{li2012human, title={Human Reidentification with Transferred "
                "Metric Learning}, author={Li, Wei and Zhao, Rui and Wang, Xiaogang}, "
                "booktitle={ACCV}, year={2012}}"
            ),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate(
            common.manual_dir(dl_manager, DOMAIN, _EXPECTED), DOMAIN, _ANCHOR, _ZIP_NAMES,
            _EXPECTED,
        )
        items = self._scan(files, cfg)
        train_ids, _ = identity_split(
            sorted({pid for _, pid, _ in items}), cfg.num_test_ids, cfg.split_index
        )
        train = set(train_ids)
        by_split: dict[str, list[image_lists.Item]] = {"train": [], "query": [], "gallery": []}
        for rel, pid, cam in items:
            split = "train" if pid in train else ("query" if cam == 0 else "gallery")
            by_split[split].append(image_lists.Item(rel, pid, cam, file_name=f"{_ANCHOR}/{rel}"))
        # Every image is decoded before anything is written (split_generators' check).
        return self._splits(files, by_split)

    def _scan(self, files: manual_files.ManualFiles, cfg: Cuhk01Config) -> list[tuple[str, int, int]]:
        """Lists campus/ and checks names and counts: [(name, person_id, camera_id)]."""
        items = []
        for rel in files.list():
            if "/" in rel:
                raise common.DatasetError(
                    f"{DOMAIN}: unexpected sub-folder file {files.describe(rel)!r}; campus/ "
                    "holds only PPPPIII.png files (remove it or re-extract the archive)."
                )
            pid, cam = parse_name(rel)
            items.append((rel, pid, cam))
        if not items:
            raise common.DatasetError(f"{DOMAIN}: {files.where!r} holds no images; expected {_EXPECTED}.")
        per_camera = 2 * cfg.images_per_camera
        common.check_counts(DOMAIN, "images", len(items), cfg.num_ids * per_camera)
        ids = sorted({pid for _, pid, _ in items})
        common.check_counts(DOMAIN, "identities", len(ids), cfg.num_ids)
        common.check_counts(DOMAIN, "cameras", len({cam for *_, cam in items}), 2)
        counts: dict[tuple[int, int], int] = {}
        for _, pid, cam in items:
            counts[pid, cam] = counts.get((pid, cam), 0) + 1
        for pid in ids:
            for cam in (0, 1):
                got = counts.get((pid, cam), 0)
                if got != cfg.images_per_camera:
                    raise common.DatasetError(
                        f"{DOMAIN}: person {pid:04d} has {got} images from camera "
                        f"{'AB'[cam]}, expected {cfg.images_per_camera}; the download looks "
                        "incomplete, re-extract the archive."
                    )
        return items
