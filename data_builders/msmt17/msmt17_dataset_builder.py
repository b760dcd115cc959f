"""MSMT17 (Wei et al., "Person Transfer GAN to Bridge Domain Gap for Person
Re-Identification", CVPR 2018), versions V1 and V2 (V2 blurs the faces).

Layout: ``MSMT17_V1/{train,test}/PPPP/*.jpg`` with list files ``list_train.txt``,
``list_val.txt``, ``list_query.txt``, ``list_gallery.txt`` beside the folders; V2 names
the folders ``mask_train_v2`` and ``mask_test_v2`` (torchreid's ``VERSION_DICT``,
KaiyangZhou/deep-person-reid ``torchreid/data/datasets/image/msmt17.py``). Each list
line is ``<path relative to the folder> <person id>``, e.g.
``0000/0000_000_01_0303morning_0015_0.jpg 0``; the third ``_`` field is the camera
(1..15, stored 0..14). The split is defined by the lists, so they are required.

Protocol: the training set is ``list_train`` + ``list_val`` (32,621 images of 1,041
ids), as in fast-reid and the published results; torchreid adds val only with
``combineall``. Counts checked: train 32,621 / 1,041, query 11,659 / 3,060, gallery
82,161 / 3,060, 15 cameras. Every listed file must exist.
"""

from __future__ import annotations

import dataclasses
import re

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "msmt17"
NAME_PATTERN = re.compile(r"\d+/\d+_\d+_(\d+)_[^/]*\.jpg")
EXAMPLE = "0000/0000_000_01_0303morning_0015_0.jpg 0"


@dataclasses.dataclass
class MsmtConfig(image_lists.ReidConfig):
    """Which release: its top folder and image folders.

    Attributes:
      top: 'MSMT17_V1' or 'MSMT17_V2'.
      train_dir: folder of train/val images.
      test_dir: folder of query/gallery images.
    """

    top: str = "MSMT17_V1"
    train_dir: str = "train"
    test_dir: str = "test"


COUNTS = {"train": (32621, 1041), "query": (11659, 3060), "gallery": (82161, 3060)}


class Builder(image_lists.ManualBuilder):
    """MSMT17 V1 or V2 from a manual download (folder or zip)."""

    name = "msmt17"
    BUILDER_CONFIGS = [
        MsmtConfig(name="v1", description="MSMT17_V1 (train/, test/).", counts=COUNTS,
                   num_cameras=15),
        MsmtConfig(name="v2", description="MSMT17_V2 (mask_train_v2/, mask_test_v2/, faces blurred).",
                   counts=COUNTS, num_cameras=15, top="MSMT17_V2", train_dir="mask_train_v2",
                   test_dir="mask_test_v2"),
    ]
    DEFAULT_CONFIG_NAME = "v2"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request MSMT17 from its authors (http://www.pkuvmc.com/dataset.html). Put
    MSMT17_V1.tar.gz's or MSMT17_V2.zip's extracted folder (MSMT17_V1/ with train/,
    test/, list_*.txt; or MSMT17_V2/ with mask_train_v2/, mask_test_v2/, list_*.txt),
    or the zip itself, into the manual_dir; build config v1 or v2 accordingly.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://www.pkuvmc.com/dataset.html",
            "@inproceedings{wei2018person, title={Person Transfer GAN to Bridge Domain Gap for "
            "Person Re-Identification}, author={Wei, Longhui and Zhang, Shiliang and Gao, Wen "
            "and Tian, Qi}, booktitle={CVPR}, year={2018}}",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        expected = (f"{cfg.top}/{{{cfg.train_dir},{cfg.test_dir}}}/ and "
                    f"{cfg.top}/list_{{train,val,query,gallery}}.txt")
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, expected), DOMAIN,
            [cfg.train_dir, cfg.test_dir, "list_train.txt", "list_val.txt", "list_query.txt",
             "list_gallery.txt"],
            (f"{cfg.top}.zip",), expected,
        )
        present = {cfg.train_dir: set(files.list(cfg.train_dir)), cfg.test_dir: set(files.list(cfg.test_dir))}
        splits = {
            "train": self._read_list(files, "list_train.txt", cfg.train_dir, present)
            + self._read_list(files, "list_val.txt", cfg.train_dir, present),
            "query": self._read_list(files, "list_query.txt", cfg.test_dir, present),
            "gallery": self._read_list(files, "list_gallery.txt", cfg.test_dir, present),
        }
        return self._splits(files, splits)

    def _read_list(self, files: manual_files.ManualFiles, list_name: str, folder: str,
                   present: dict[str, set[str]]) -> list[image_lists.Item]:
        items = []
        text = files.read(list_name).decode("utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            m = NAME_PATTERN.fullmatch(parts[0]) if len(parts) == 2 else None
            if m is None or not parts[1].isdigit():
                raise common.DatasetError(
                    f"{DOMAIN}: line {n} of {files.describe(list_name)!r} reads {line.strip()!r}; "
                    f"lines look like {EXAMPLE!r} (re-extract the archive)."
                )
            rel = f"{folder}/{parts[0]}"
            if rel not in present[folder]:
                raise common.DatasetError(
                    f"{DOMAIN}: {files.describe(rel)!r}, listed in {list_name}, is missing; "
                    "re-extract the archive."
                )
            cam = int(m.group(1))
            if not 1 <= cam <= 15:
                raise common.DatasetError(
                    f"{DOMAIN}: {files.describe(rel)!r} names camera {cam}; MSMT17 has cameras 1..15."
                )
            items.append(image_lists.Item(rel, int(parts[1]), cam - 1))
        return items
