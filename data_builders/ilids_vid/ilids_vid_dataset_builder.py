"""iLIDS-VID video re-ID (Wang, Gong, Zhu, Wang, "Person Re-Identification by Video
Ranking", ECCV 2014).

Layout of ``iLIDS-VID.tar`` (extract it): ``i-LIDS-VID/sequences/cam1/personNNN/
cam1_personNNN_FFFFF.png`` and the same under ``cam2``: one sequence per person and
camera, 300 persons; ``train-test people splits/train_test_splits_ilidsvid.mat`` holds
the 10 official splits (``ls_set``: 10 rows of 300 1-based indices into the sorted
person folders; the first 150 are the test persons, Wang et al.; read as torchreid does,
KaiyangZhou/deep-person-reid ``torchreid/data/datasets/video/ilidsvid.py``).

Configs ``s0`` .. ``s9`` (official splits): train = both sequences of the 150 train
persons, query = cam1 sequences of the test persons, gallery = their cam2 sequences.
Every frame is one example; ``tracklet_id`` = 2 * (person's index in sorted order) +
camera, ``frame_id`` = position in the sorted sequence. Counts checked: 300 persons in
both cameras; train 300 tracklets / 150 ids, query 150 / 150, gallery 150 / 150.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "ilids_vid"
SPLITS_MAT = "train-test people splits/train_test_splits_ilidsvid.mat"
PATTERN = r"cam(\d)_person(\d+)_\d+\.png"
EXPECTED = f"i-LIDS-VID/sequences/{{cam1,cam2}}/personNNN/*.png and {SPLITS_MAT}"


@dataclasses.dataclass
class IlidsVidConfig(image_lists.ReidConfig):
    """Raw counts.

    Attributes:
      num_persons: persons with a sequence in each camera (300).
    """

    num_persons: int = 300


class Builder(image_lists.ManualBuilder):
    """iLIDS-VID from a manual download (extracted folder or zip)."""

    name = "ilids_vid"
    BUILDER_CONFIGS = [
        IlidsVidConfig(name=f"s{k}", description=f"Official split {k + 1} of 10.", split_index=k,
                       counts={"train": (None, 150), "query": (None, 150), "gallery": (None, 150)},
                       num_tracklets={"train": 300, "query": 150, "gallery": 150}, num_cameras=2)
        for k in range(10)
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download iLIDS-VID.tar (http://www.eecs.qmul.ac.uk/~xiatian/downloads_qmul_iLIDS-VID_ReID_dataset.html),
    extract it and put its content (i-LIDS-VID/ and "train-test people splits/") into the
    manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://www.eecs.qmul.ac.uk/~xiatian/downloads_qmul_iLIDS-VID_ReID_dataset.html",
            "@inproceedings{wang2014person, title={Person Re-Identification by Video Ranking}, "
            "author={Wang, Taiqing and Gong, Shaogang and Zhu, Xiatian and Wang, Shengjin}, "
            "booktitle={ECCV}, year={2014}}",
            encoding_format="png", video=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN,
            ["i-LIDS-VID/sequences/cam1", "i-LIDS-VID/sequences/cam2", SPLITS_MAT],
            ("iLIDS-VID.zip",), EXPECTED, depth=3,
        )
        seqs: list[dict[str, list[str]]] = []
        for cam in (1, 2):
            folder = f"i-LIDS-VID/sequences/cam{cam}"
            by_person: dict[str, list[str]] = {}
            for rel, m in image_lists.scan_folder(files, folder, PATTERN, DOMAIN,
                                                  f"person001/cam{cam}_person001_00317.png", recursive=True):
                person_dir = rel.split("/")[-2]
                if int(m.group(1)) != cam or person_dir != f"person{m.group(2)}":
                    raise common.DatasetError(
                        f"{DOMAIN}: {files.describe(rel)!r} is filed under the wrong camera or person; "
                        "re-extract the archive."
                    )
                by_person.setdefault(person_dir, []).append(rel)
            seqs.append(by_person)
        persons = sorted(seqs[0])
        if persons != sorted(seqs[1]):
            raise common.DatasetError(f"{DOMAIN}: cam1 and cam2 hold different persons; re-extract the archive.")
        common.check_counts(DOMAIN, "persons", len(persons), cfg.num_persons)
        try:
            ls_set = np.asarray(scipy.io.loadmat(io.BytesIO(files.read(SPLITS_MAT)))["ls_set"]).astype(int)
            row = ls_set[cfg.split_index]
        except (KeyError, ValueError, IndexError) as e:
            raise common.DatasetError(f"{DOMAIN}: cannot read split {cfg.split_index} of {SPLITS_MAT} ({e}).") from e
        half = len(persons) // 2
        test = sorted(int(i) - 1 for i in row[:half])
        train = sorted(int(i) - 1 for i in row[half:])

        def items(index: int, cam: int) -> list[image_lists.Item]:
            person = persons[index]
            return image_lists.tracklet(seqs[cam][person], int(person[6:]), cam, 2 * index + cam)

        splits = {
            "train": [it for i in train for cam in (0, 1) for it in items(i, cam)],
            "query": [it for i in test for it in items(i, 0)],
            "gallery": [it for i in test for it in items(i, 1)],
        }
        return self._splits(files, splits)
