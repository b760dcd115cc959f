"""PRID2011, single-shot version (Hirzer et al., "Person Re-Identification by Descriptive
and Discriminative Classification", SCIA 2011).

Layout of ``prid_2011.zip``: ``prid_2011/single_shot/cam_a/person_NNNN.png`` (385
persons) and ``.../cam_b/person_NNNN.png`` (749 persons); persons 0001..0200 appear in
both cameras, the others in one only (torchreid: KaiyangZhou/deep-person-reid
``torchreid/data/datasets/image/prid.py``).

Protocol (as torchreid and MetaBIN): 10 random splits of the 200 shared persons into
100 train / 100 test (configs ``s0`` .. ``s9``, ``np.random.default_rng(k)`` over persons
1..200). Train = both views of the train persons; query = cam_a of the test persons;
gallery = cam_b of the test persons plus cam_b persons 201..749 as distractors (649
images). cam_a persons 201..385 are not used. Counts checked: 385 / 749 files, train
200 / 100, query 100 / 100, gallery 649 / 649.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "prid2011"
PATTERN = r"person_(\d{4})\.png"
EXPECTED = "prid_2011/single_shot/{cam_a,cam_b}/person_NNNN.png"


@dataclasses.dataclass
class PridConfig(image_lists.ReidConfig):
    """Raw counts of the single-shot folders.

    Attributes:
      num_cam_a: persons in cam_a (385).
      num_cam_b: persons in cam_b (749).
      num_shared: persons 1..num_shared appear in both cameras (200).
    """

    num_cam_a: int = 385
    num_cam_b: int = 749
    num_shared: int = 200


COUNTS = {"train": (200, 100), "query": (100, 100), "gallery": (649, 649)}


class Builder(image_lists.ManualBuilder):
    """PRID2011 single-shot from a manual download (folder or zip)."""

    name = "prid2011"
    BUILDER_CONFIGS = image_lists.random_split_configs(100, COUNTS, 2, cls=PridConfig)
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download prid_2011.zip (https://www.tugraz.at/institute/icg/research/team-bischof/
    lrs/downloads/PRID11/) and put the zip, or its extracted prid_2011/ folder
    (single_shot/cam_a, single_shot/cam_b), into the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "https://www.tugraz.at/institute/icg/research/team-bischof/lrs/downloads/PRID11/",
            "@inproceedings{hirzer2011person, title={Person Re-Identification by Descriptive "
            "and Discriminative Classification}, author={Hirzer, Martin and Beleznai, Csaba and "
            "Roth, Peter M. and Bischof, Horst}, booktitle={SCIA}, year={2011}}",
            encoding_format="png",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN,
            ["single_shot/cam_a", "single_shot/cam_b"], ("prid_2011.zip",), EXPECTED, depth=3,
        )
        cams = []
        for cam, (folder, expected) in enumerate((("cam_a", cfg.num_cam_a), ("cam_b", cfg.num_cam_b))):
            found = {
                int(m.group(1)): image_lists.Item(rel, int(m.group(1)), cam)
                for rel, m in image_lists.scan_folder(files, f"single_shot/{folder}", PATTERN, DOMAIN,
                                                      "person_0001.png")
            }
            common.check_counts(DOMAIN, f"{folder} persons", len(found), expected)
            if sorted(found) != list(range(1, expected + 1)):
                raise common.DatasetError(
                    f"{DOMAIN}: {folder}/ should hold person_0001.png .. person_{expected:04d}.png; "
                    "re-extract the archive."
                )
            cams.append(found)
        train_ids, test_ids = image_lists.seeded_split(range(1, cfg.num_shared + 1), cfg.num_test_ids,
                                                       cfg.split_index)
        splits = {
            "train": [cams[c][p] for p in train_ids for c in (0, 1)],
            "query": [cams[0][p] for p in test_ids],
            "gallery": [cams[1][p] for p in test_ids]
            + [cams[1][p] for p in range(cfg.num_shared + 1, cfg.num_cam_b + 1)],
        }
        return self._splits(files, splits)
