"""MARS video re-ID (Zheng et al., "MARS: A Video Benchmark for Large-Scale Person
Re-identification", ECCV 2016).

Layout: ``bbox_train/PPPP/<frame>.jpg``, ``bbox_test/PPPP/<frame>.jpg`` with frames named
``PPPPCcTttttFfff.jpg`` (``0001C1T0001F001.jpg``: person 0001, camera 1, tracklet 0001,
frame 001), and the split files from the MARS-evaluation repository in ``info/``:
``train_name.txt`` / ``test_name.txt`` (frame names in order), ``tracks_train_info.mat``
/ ``tracks_test_info.mat`` (one row per tracklet: first and last 1-based line in the
name list, person, camera) and ``query_IDX.mat`` (1-based test tracklets used as
queries). Read as torchreid does (KaiyangZhou/deep-person-reid
``torchreid/data/datasets/video/mars.py``): junk tracklets (person -1) dropped,
distractors (person 0) kept, cameras 1..6 stored 0..5.

Every frame is one example; ``tracklet_id`` is the tracklet's row in its info file
(train or test) and ``frame_id`` its position in the tracklet.

Configs:
- ``standard``: gallery = test tracklets that are not queries (torchreid, 9,330).
- ``tkp``: the gallery also holds the 1,980 query tracklets (11,310), as TKP
  (Gu et al., ICCV 2019) does because otherwise some queries have no true match.
Counts checked: train 8,298 tracklets / 625 ids, query 1,980 tracklets, gallery as
above, 6 cameras. The frames are not decoded before writing (about 1.2 million; a
broken one still stops the build and leaves no prepared dataset).
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "mars"
EXPECTED = "bbox_train/, bbox_test/ and info/{train_name.txt,test_name.txt,tracks_train_info.mat,tracks_test_info.mat,query_IDX.mat}"
INFO = ("info/train_name.txt", "info/test_name.txt", "info/tracks_train_info.mat",
        "info/tracks_test_info.mat", "info/query_IDX.mat")


@dataclasses.dataclass
class MarsConfig(image_lists.ReidConfig):
    """Whether the query tracklets are also gallery tracklets.

    Attributes:
      query_in_gallery: TKP's gallery (True) or torchreid's (False).
    """

    query_in_gallery: bool = False


class Builder(image_lists.ManualBuilder):
    """MARS from a manual download (folder or zip)."""

    name = "mars"
    BUILDER_CONFIGS = [
        MarsConfig(name="standard", description="torchreid's gallery (queries excluded).",
                   counts={"train": (None, 625)}, num_cameras=6,
                   num_tracklets={"train": 8298, "query": 1980, "gallery": 9330}),
        MarsConfig(name="tkp", description="Gallery with the query tracklets added (TKP).",
                   counts={"train": (None, 625)}, num_cameras=6, query_in_gallery=True,
                   num_tracklets={"train": 8298, "query": 1980, "gallery": 11310}),
    ]
    DEFAULT_CONFIG_NAME = "standard"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download MARS (bbox_train.zip, bbox_test.zip; http://zheng-lab.cecs.anu.edu.au/Project/
    project_mars.html) and the info/ folder of https://github.com/liangzheng06/MARS-evaluation,
    and put bbox_train/, bbox_test/ and info/ side by side in one folder of the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://zheng-lab.cecs.anu.edu.au/Project/project_mars.html",
            "@inproceedings{zheng2016mars, title={MARS: A Video Benchmark for Large-Scale Person "
            "Re-identification}, author={Zheng, Liang and Bie, Zhi and Sun, Yifan and Wang, "
            "Jingdong and Su, Chi and Wang, Shengjin and Tian, Qi}, booktitle={ECCV}, year={2016}}",
            video=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN,
            ["bbox_train", "bbox_test", *INFO], ("MARS.zip", "mars.zip"), EXPECTED,
        )
        train = self._tracklets(files, "bbox_train", "info/train_name.txt", "info/tracks_train_info.mat",
                                "track_train_info")
        test = self._tracklets(files, "bbox_test", "info/test_name.txt", "info/tracks_test_info.mat",
                               "track_test_info")
        query_rows = {int(i) - 1 for i in self._mat(files, "info/query_IDX.mat", "query_IDX").ravel()}
        splits = {
            "train": [it for rows in train.values() for it in rows],
            "query": [it for t, rows in test.items() if t in query_rows for it in rows],
            "gallery": [it for t, rows in test.items()
                        if cfg.query_in_gallery or t not in query_rows for it in rows],
        }
        return self._splits(files, splits, check_decode=False)

    def _mat(self, files: manual_files.ManualFiles, rel: str, key: str) -> np.ndarray:
        try:
            return np.asarray(scipy.io.loadmat(io.BytesIO(files.read(rel)))[key])
        except (KeyError, ValueError, TypeError) as e:
            raise common.DatasetError(f"{DOMAIN}: cannot read {key} from {files.describe(rel)!r} ({e}).") from e

    def _tracklets(self, files: manual_files.ManualFiles, folder: str, names_file: str, info_file: str,
                   key: str) -> dict[int, list[image_lists.Item]]:
        """Row -> the tracklet's frames, junk rows left out."""
        names = files.read(names_file).decode().split()
        present = set(files.list(folder))
        out = {}
        for row, (start, end, pid, cam) in enumerate(self._mat(files, info_file, key).astype(int)):
            if pid == -1:
                continue
            frames = names[start - 1:end]
            if not frames or not 1 <= cam <= 6:
                raise common.DatasetError(
                    f"{DOMAIN}: row {row + 1} of {info_file} ({start}, {end}, {pid}, {cam}) does not "
                    f"fit {names_file}; the info/ files do not belong to this download."
                )
            rels = [f"{folder}/{n[:4]}/{n}" for n in frames]
            for n, rel in zip(frames, rels):
                if int(n[:4]) != pid or rel not in present:
                    raise common.DatasetError(
                        f"{DOMAIN}: tracklet {row + 1} of {info_file} needs {files.describe(rel)!r} "
                        f"(person {pid}), which is missing; re-extract {folder}."
                    )
            out[row] = image_lists.tracklet(rels, pid, cam - 1, row)
        return out
