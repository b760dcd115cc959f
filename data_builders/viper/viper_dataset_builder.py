"""VIPeR (Gray, Brennan, Tao, "Evaluating Appearance Models for Recognition, Reacquisition,
and Tracking", PETS 2007).

Layout of ``VIPeR.v1.0.zip``: ``VIPeR/cam_a/*.bmp`` and ``VIPeR/cam_b/*.bmp``, one image
per person and camera, 632 persons; a file is ``NNN_AAA.bmp`` (person number, viewing
angle), the same person number in both folders (torchreid pairs the two sorted folders
index by index; KaiyangZhou/deep-person-reid ``torchreid/data/datasets/image/viper.py``;
we pair by the number and check that both folders hold the same persons).

Protocol: 10 random splits of 316 train / 316 test persons (configs ``s0`` .. ``s9``,
``np.random.default_rng(k)``, see ``image_lists.seeded_split``); query = cam_a,
gallery = cam_b of the test persons. torchreid also evaluates the reversed direction
(20 splits); MetaBIN uses these 10. Counts checked: 632 persons x 2 cameras.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "viper"
PATTERN = r"(\d+)_(\d+)\.bmp"
EXPECTED = "VIPeR/cam_a/*.bmp and VIPeR/cam_b/*.bmp (632 each)"
COUNTS = {"train": (632, 316), "query": (316, 316), "gallery": (316, 316)}


class Builder(image_lists.ManualBuilder):
    """VIPeR from a manual download (folder or zip)."""

    name = "viper"
    BUILDER_CONFIGS = image_lists.random_split_configs(316, COUNTS, 2)
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download VIPeR.v1.0.zip (https://vision.soe.ucsc.edu/node/178) and put the zip, or
    its extracted VIPeR/ folder (cam_a/, cam_b/), into the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "https://vision.soe.ucsc.edu/node/178",
            "@inproceedings{gray2007evaluating, title={Evaluating Appearance Models for "
            "Recognition, Reacquisition, and Tracking}, author={Gray, Doug and Brennan, Shane "
            "and Tao, Hai}, booktitle={PETS}, year={2007}}",
            encoding_format="png",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN, ["cam_a", "cam_b"],
            ("VIPeR.v1.0.zip", "VIPeR.zip"), EXPECTED,
        )
        by_cam = []
        for cam, folder in enumerate(("cam_a", "cam_b")):
            found = {}
            for rel, m in image_lists.scan_folder(files, folder, PATTERN, DOMAIN, "000_45.bmp"):
                pid = int(m.group(1))
                if pid in found:
                    raise common.DatasetError(
                        f"{DOMAIN}: person {pid} appears twice in {folder}/ "
                        f"({files.describe(rel)!r}); re-extract the archive."
                    )
                found[pid] = image_lists.Item(rel, pid, cam)
            by_cam.append(found)
        if set(by_cam[0]) != set(by_cam[1]):
            odd = sorted(set(by_cam[0]) ^ set(by_cam[1]))[:5]
            raise common.DatasetError(
                f"{DOMAIN}: cam_a/ and cam_b/ hold different persons (e.g. {odd}); each person "
                "has one image per camera, re-extract the archive."
            )
        train_ids, test_ids = image_lists.seeded_split(by_cam[0], cfg.num_test_ids, cfg.split_index)
        splits = {
            "train": [by_cam[c][p] for p in train_ids for c in (0, 1)],
            "query": [by_cam[0][p] for p in test_ids],
            "gallery": [by_cam[1][p] for p in test_ids],
        }
        return self._splits(files, splits)
