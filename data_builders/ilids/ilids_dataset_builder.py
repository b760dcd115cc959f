"""QMUL iLIDS (Zheng, Gong, Xiang, "Associating Groups of People", BMVC 2009).

Layout of ``i-LIDS_Pedestrian.tgz`` (extract it; the builder reads folders and zips):
``i-LIDS_Pedestrian/Persons/PPPPIII.jpg``, 476 images of 119 persons (``PPPP`` person,
``III`` image number). The dataset has no camera labels; like torchreid
(KaiyangZhou/deep-person-reid ``torchreid/data/datasets/image/ilids.py``) we store the
image number minus one as ``camera_id``, so that a query and a gallery image of the same
person never count as the same camera.

Protocol (as torchreid, seeded): 10 random splits (configs ``s0`` .. ``s9``) of 59 train
/ 60 test persons (``np.random.default_rng(k)`` permutation, see
``image_lists.seeded_split``); train = all images of the train persons; for each test
person, in increasing id order, ``np.random.default_rng([1, k]).choice`` draws two of
its images without replacement: the first is the query, the second the gallery image.
Counts checked: 476 images, 119 persons; query 60 / 60, gallery 60 / 60, train 59 ids.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "ilids"
PATTERN = r"(\d{4})(\d{3})\.jpg"
EXPECTED = "i-LIDS_Pedestrian/Persons/PPPPIII.jpg (476 files)"


@dataclasses.dataclass
class IlidsConfig(image_lists.ReidConfig):
    """Raw counts.

    Attributes:
      num_images: files in Persons/ (476).
      num_ids: persons (119).
    """

    num_images: int = 476
    num_ids: int = 119


COUNTS = {"train": (None, 59), "query": (60, 60), "gallery": (60, 60)}


class Builder(image_lists.ManualBuilder):
    """QMUL iLIDS from a manual download (folder or zip)."""

    name = "ilids"
    BUILDER_CONFIGS = image_lists.random_split_configs(60, COUNTS, None, cls=IlidsConfig)
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download i-LIDS_Pedestrian.tgz (http://www.eecs.qmul.ac.uk/~jason/data/
    i-LIDS_Pedestrian.tgz), extract it and put the i-LIDS_Pedestrian/ folder (with
    Persons/) into the manual_dir (a zip of that folder works too).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://www.eecs.qmul.ac.uk/~jason/data/i-LIDS_Pedestrian.tgz",
            "@inproceedings{zheng2009associating, title={Associating Groups of People}, "
            "author={Zheng, Wei-Shi and Gong, Shaogang and Xiang, Tao}, booktitle={BMVC}, "
            "year={2009}}",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN, ["Persons"],
            ("i-LIDS_Pedestrian.zip",), EXPECTED,
        )
        by_id: dict[int, list[image_lists.Item]] = {}
        for rel, m in image_lists.scan_folder(files, "Persons", PATTERN, DOMAIN, "0001001.jpg"):
            pid = int(m.group(1))
            by_id.setdefault(pid, []).append(image_lists.Item(rel, pid, int(m.group(2)) - 1))
        common.check_counts(DOMAIN, "images", sum(len(v) for v in by_id.values()), cfg.num_images)
        common.check_counts(DOMAIN, "persons", len(by_id), cfg.num_ids)
        for pid, items in by_id.items():
            if len(items) < 2:
                raise common.DatasetError(
                    f"{DOMAIN}: person {pid:04d} has {len(items)} image; every person has at least "
                    "2, re-extract the archive."
                )
        train_ids, test_ids = image_lists.seeded_split(by_id, cfg.num_test_ids, cfg.split_index)
        rng = np.random.default_rng([1, cfg.split_index])
        query, gallery = [], []
        for pid in test_ids:
            q, g = rng.choice(len(by_id[pid]), size=2, replace=False)
            query.append(by_id[pid][q])
            gallery.append(by_id[pid][g])
        splits = {"train": [it for p in train_ids for it in by_id[p]], "query": query, "gallery": gallery}
        return self._splits(files, splits)
