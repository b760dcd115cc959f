"""CUHK02 (Li, Wang, "Locally Aligned Feature Transforms across Views", CVPR 2013).

Layout: ``Dataset/P1`` .. ``Dataset/P5``, five camera-view pairs, each with ``cam1/`` and
``cam2/`` folders of PNG files whose name starts with the person number and ``_``
(torchreid: KaiyangZhou/deep-person-reid ``torchreid/data/datasets/image/cuhk02.py``).
Pairs P1..P5 hold 971, 306, 107, 193 and 239 persons: 1,816 persons, 7,264 images.
Person numbers restart in every pair, so ``person_id`` = pair * 10000 + number
(``P2``'s person 5 is 20005); ``camera_id`` = 2 * (pair - 1) + (cam - 1), 0..9.
P1 are the CUHK01 persons: do not train on one and test on the other.

Configs:
- ``standard`` (torchreid's protocol): train = P1-P4, query = P5 cam1, gallery = P5 cam2.
- ``all``: every image in ``train`` (how domain-generalization work such as MetaBIN
  uses CUHK02 as a source); no query/gallery.
Counts checked: 1,816 persons and 7,264 images over the pairs, 10 cameras, 239 test
persons for ``standard``.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "cuhk02"
PAIRS = ("P1", "P2", "P3", "P4", "P5")
PATTERN = r"(\d+)_[^/]*\.png"
EXPECTED = "Dataset/P1..P5/{cam1,cam2}/*.png"


@dataclasses.dataclass
class Cuhk02Config(image_lists.ReidConfig):
    """Protocol and raw counts.

    Attributes:
      test_pair: the pair used for query/gallery ('' = everything is training data).
      num_ids: persons over all pairs (1,816).
      num_images: images over all pairs (7,264).
    """

    test_pair: str = "P5"
    num_ids: int = 1816
    num_images: int = 7264


class Builder(image_lists.ManualBuilder):
    """CUHK02 from a manual download (folder or zip)."""

    name = "cuhk02"
    BUILDER_CONFIGS = [
        Cuhk02Config(name="standard", description="Train P1-P4, test P5 (cam1 query, cam2 gallery).",
                     counts={"train": (None, 1577), "query": (None, 239), "gallery": (None, 239)},
                     num_cameras=10),
        Cuhk02Config(name="all", description="All five pairs as training data.",
                     counts={"train": (7264, 1816)}, num_cameras=10, test_pair=""),
    ]
    DEFAULT_CONFIG_NAME = "standard"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request CUHK02 from the authors (http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html)
    and put its extracted Dataset/ folder (P1/ .. P5/, each with cam1/ and cam2/), or the
    zip holding it, into the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html",
            "@inproceedings{li2013locally, title={Locally Aligned Feature Transforms across "
            "Views}, author={Li, Wei and Wang, Xiaogang}, booktitle={CVPR}, year={2013}}",
            encoding_format="png",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN,
            [f"{p}/{c}" for p in PAIRS for c in ("cam1", "cam2")], ("CUHK02.zip", "cuhk02.zip"),
            EXPECTED, depth=3,
        )
        by_pair: dict[str, list[image_lists.Item]] = {}
        for k, pair in enumerate(PAIRS, 1):
            by_pair[pair] = [
                image_lists.Item(rel, k * 10000 + int(m.group(1)), 2 * (k - 1) + c)
                for c, cam in enumerate(("cam1", "cam2"))
                for rel, m in image_lists.scan_folder(files, f"{pair}/{cam}", PATTERN, DOMAIN, "0001_1.png")
            ]
        everything = [it for items in by_pair.values() for it in items]
        common.check_counts(DOMAIN, "images", len(everything), cfg.num_images)
        common.check_counts(DOMAIN, "persons", len({it.person_id for it in everything}), cfg.num_ids)
        if not cfg.test_pair:
            return self._splits(files, {"train": everything})
        test = by_pair[cfg.test_pair]
        cam1 = min(it.camera_id for it in test)
        splits = {
            "train": [it for p, items in by_pair.items() if p != cfg.test_pair for it in items],
            "query": [it for it in test if it.camera_id == cam1],
            "gallery": [it for it in test if it.camera_id != cam1],
        }
        return self._splits(files, splits)
