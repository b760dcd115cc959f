"""QMUL GRID (Loy, Xiang, Gong, "Multi-Camera Activity Correlation Analysis", CVPR 2009).

Layout of ``underground_reid.zip``: ``underground_reid/probe/*.jpeg`` (250 images),
``underground_reid/gallery/*.jpeg`` (1,025: the 250 persons' second view plus 775
distractors with person number 0000) and ``features_and_partitions.mat``. A file name is
``PPPP_C_...jpeg``: person, camera (1..8, stored 0..7).

Protocol: the 10 official partitions in ``features_and_partitions.mat`` (configs ``s0``
.. ``s9``): ``trainIdxAll[k]`` lists the 125 training persons, read as torchreid does
(``trainIdxAll[0][k][0][0][2][0]``, KaiyangZhou/deep-person-reid
``torchreid/data/datasets/image/grid.py``). Train = both views of those persons; query
= probe images of the other 125; gallery = their gallery images plus the 775
distractors (person_id 0). Counts checked: train 250 / 125, query 125 / 125, gallery
900 / 126 (125 persons + the distractor id), 8 cameras.
"""

from __future__ import annotations

import dataclasses
import io

import scipy.io
import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "grid"
PATTERN = r"(\d{4})_(\d)_.*\.jpeg"
EXAMPLE = "0001_1_25004_107_32_130.jpeg"
PARTITIONS = "features_and_partitions.mat"
EXPECTED = f"underground_reid/{{probe,gallery}}/*.jpeg and underground_reid/{PARTITIONS}"


@dataclasses.dataclass
class GridConfig(image_lists.ReidConfig):
    """GRID's official partition ``split_index`` and the raw counts.

    Attributes:
      num_probe: images in probe/ (250 published).
      num_gallery: images in gallery/ (1,025 published).
      num_train_ids: persons per official training partition (125).
    """

    num_probe: int = 250
    num_gallery: int = 1025
    num_train_ids: int = 125


COUNTS = {"train": (250, 125), "query": (125, 125), "gallery": (900, 126)}


def train_ids_from_mat(data: bytes, split_index: int, where: str) -> list[int]:
    """The training persons of official partition ``split_index`` (torchreid's indexing)."""
    try:
        mat = scipy.io.loadmat(io.BytesIO(data))
        return [int(x) for x in mat["trainIdxAll"][0][split_index][0][0][2][0]]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise common.DatasetError(
            f"{DOMAIN}: cannot read partition {split_index} from {where!r} ({e}); re-extract "
            "the archive."
        ) from e


class Builder(image_lists.ManualBuilder):
    """GRID from a manual download (folder or zip)."""

    name = "grid"
    BUILDER_CONFIGS = [
        GridConfig(name=f"s{k}", description=f"Official partition {k + 1} of 10.", counts=COUNTS,
                   num_cameras=8, split_index=k)
        for k in range(10)
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download underground_reid.zip
    (http://personal.ie.cuhk.edu.hk/~ccloy/downloads_qmul_underground_reid.html) and put
    the zip, or its extracted underground_reid/ folder (probe/, gallery/,
    features_and_partitions.mat), into the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://personal.ie.cuhk.edu.hk/~ccloy/downloads_qmul_underground_reid.html",
            "@inproceedings{loy2009multi, title={Multi-Camera Activity Correlation Analysis}, "
            "author={Loy, Chen Change and Xiang, Tao and Gong, Shaogang}, booktitle={CVPR}, "
            "year={2009}}",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN, ["probe", "gallery", PARTITIONS],
            ("underground_reid.zip",), EXPECTED,
        )
        probe = self._items(files, "probe")
        gallery = self._items(files, "gallery")
        common.check_counts(DOMAIN, "probe images", len(probe), cfg.num_probe)
        common.check_counts(DOMAIN, "gallery images", len(gallery), cfg.num_gallery)
        train = set(train_ids_from_mat(files.read(PARTITIONS), cfg.split_index, files.describe(PARTITIONS)))
        common.check_counts(DOMAIN, f"training persons in partition {cfg.split_index}", len(train),
                            cfg.num_train_ids)
        splits = {
            "train": [it for it in probe + gallery if it.person_id in train],
            "query": [it for it in probe if it.person_id not in train],
            "gallery": [it for it in gallery if it.person_id not in train],
        }
        return self._splits(files, splits)

    def _items(self, files: manual_files.ManualFiles, folder: str) -> list[image_lists.Item]:
        return [
            image_lists.Item(rel, int(m.group(1)), int(m.group(2)) - 1)
            for rel, m in image_lists.scan_folder(files, folder, PATTERN, DOMAIN, EXAMPLE)
        ]
