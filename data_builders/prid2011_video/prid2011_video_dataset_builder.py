"""PRID-2011, multi-shot (video) version (Hirzer et al., SCIA 2011; video protocol of
Wang et al., "Person Re-Identification by Video Ranking", ECCV 2014).

Layout of ``prid_2011.zip``: ``prid_2011/multi_shot/cam_a/person_NNNN/FFFF.png`` (385
persons) and ``.../cam_b/person_NNNN/`` (749 persons), one sequence per person and
camera; persons 0001..0200 appear in both (torchreid: KaiyangZhou/deep-person-reid
``torchreid/data/datasets/video/prid2011.py``, which reads its splits from a json file
that is not part of the archive).

Configs (10 seeded random splits each, ``np.random.default_rng(k)``, see
``image_lists.seeded_split``):
- ``p200_s0`` .. ``p200_s9``: the 200 shared persons, 100 train / 100 test.
- ``p178_s0`` .. ``p178_s9``: the shared persons whose sequences have at least
  ``min_frames`` = 27 frames in both cameras (178 persons, the subset REFERENCE.md
  gives as commonly used), 89 / 89.
Train = both sequences of the train persons; query = cam_a of the test persons;
gallery = their cam_b sequences. Every frame is one example; ``tracklet_id`` =
2 * person number + camera. Counts checked: 385 / 749 persons, the subset size and the
per-split tracklets.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "prid2011_video"
PATTERN = r"\d{4}\.png"
EXPECTED = "prid_2011/multi_shot/{cam_a,cam_b}/person_NNNN/FFFF.png"


@dataclasses.dataclass
class PridVideoConfig(image_lists.ReidConfig):
    """Raw counts and the person subset.

    Attributes:
      num_cam_a: persons in cam_a (385).
      num_cam_b: persons in cam_b (749).
      num_shared: persons 1..num_shared appear in both cameras (200).
      min_frames: keep shared persons with at least this many frames in both cameras.
      num_persons: persons left after ``min_frames`` (checked).
    """

    num_cam_a: int = 385
    num_cam_b: int = 749
    num_shared: int = 200
    min_frames: int = 0
    num_persons: int = 200


def _configs() -> list[PridVideoConfig]:
    out = []
    for persons, min_frames in ((200, 0), (178, 27)):
        half = persons // 2
        out += image_lists.random_split_configs(
            persons - half, {"train": (None, half), "query": (None, persons - half),
                             "gallery": (None, persons - half)},
            2, cls=PridVideoConfig, prefix=f"p{persons}_s", min_frames=min_frames, num_persons=persons,
            num_tracklets={"train": 2 * half, "query": persons - half, "gallery": persons - half},
        )
    return out


class Builder(image_lists.ManualBuilder):
    """PRID-2011 multi-shot from a manual download (folder or zip)."""

    name = "prid2011_video"
    BUILDER_CONFIGS = _configs()
    DEFAULT_CONFIG_NAME = "p178_s0"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download prid_2011.zip (https://www.tugraz.at/institute/icg/research/team-bischof/
    lrs/downloads/PRID11/) and put the zip, or its extracted prid_2011/ folder
    (multi_shot/cam_a, multi_shot/cam_b), into the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "https://www.tugraz.at/institute/icg/research/team-bischof/lrs/downloads/PRID11/",
            "@inproceedings{hirzer2011person, title={Person Re-Identification by Descriptive "
            "and Discriminative Classification}, author={Hirzer, Martin and Beleznai, Csaba and "
            "Roth, Peter M. and Bischof, Horst}, booktitle={SCIA}, year={2011}}",
            encoding_format="png", video=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN,
            ["multi_shot/cam_a", "multi_shot/cam_b"], ("prid_2011.zip",), EXPECTED, depth=3,
        )
        seqs = []
        for folder, expected in (("cam_a", cfg.num_cam_a), ("cam_b", cfg.num_cam_b)):
            by_person: dict[int, list[str]] = {}
            for rel, _ in image_lists.scan_folder(files, f"multi_shot/{folder}", PATTERN, DOMAIN,
                                                  "person_0001/0001.png", recursive=True):
                person = rel.split("/")[-2]
                if not (person.startswith("person_") and person[7:].isdigit()):
                    raise common.DatasetError(
                        f"{DOMAIN}: unexpected folder for {files.describe(rel)!r}; sequences sit in "
                        "person_NNNN/ folders (re-extract the archive)."
                    )
                by_person.setdefault(int(person[7:]), []).append(rel)
            common.check_counts(DOMAIN, f"{folder} persons", len(by_person), expected)
            seqs.append(by_person)
        persons = [
            p for p in range(1, cfg.num_shared + 1)
            if p in seqs[0] and p in seqs[1] and min(len(seqs[0][p]), len(seqs[1][p])) >= cfg.min_frames
        ]
        common.check_counts(DOMAIN, f"shared persons with >= {cfg.min_frames} frames", len(persons),
                            cfg.num_persons)
        train_ids, test_ids = image_lists.seeded_split(persons, cfg.num_test_ids, cfg.split_index)

        def items(p: int, cam: int) -> list[image_lists.Item]:
            return image_lists.tracklet(seqs[cam][p], p, cam, 2 * p + cam)

        splits = {
            "train": [it for p in train_ids for cam in (0, 1) for it in items(p, cam)],
            "query": [it for p in test_ids for it in items(p, 0)],
            "gallery": [it for p in test_ids for it in items(p, 1)],
        }
        return self._splits(files, splits)
