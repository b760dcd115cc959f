"""CUHK03 (Li, Zhao, Xiao, Wang, "DeepReID: Deep Filter Pairing Neural Network for Person
Re-identification", CVPR 2014), with the CUHK03-NP protocol of Zhong et al.
("Re-ranking Person Re-identification with k-reciprocal Encoding", CVPR 2017).

Source: ``cuhk03_release/cuhk-03.mat``, a MATLAB v7.3 (HDF5) file read with h5py. Its
``labeled`` and ``detected`` cells hold, per camera pair (5), a persons x 10 cell of
images (columns 1-5 from the pair's first camera, 6-10 from the second; empty cells
where a person has fewer images); ``testsets`` holds the 20 classic test sets as
(pair, person) rows. Images are stored as PNG encoded here, named as torchreid names
them (``{pair}_{person:03d}_{view}_{column:02d}.png``, KaiyangZhou/deep-person-reid
``torchreid/data/datasets/image/cuhk03.py``), which are the names the CUHK03-NP files
``cuhk03_new_protocol_config_{labeled,detected}.mat`` list.

``person_id`` = pair * 1000 + person (unique over the pairs); ``camera_id`` = view - 1.

Configs:
- ``np_labeled`` / ``np_detected`` (CUHK03-NP, 767 train / 700 test ids; default
  ``np_labeled``): splits from ``train_idx`` / ``query_idx`` / ``gallery_idx`` of the
  protocol file. Counts checked: labeled 7,368 / 1,400 / 5,328 images, detected 7,365 /
  1,400 / 5,332; 767 / 700 / 700 ids.
- ``classic_labeled_sK`` / ``classic_detected_sK`` (K = 0..19): test persons = classic
  test set K (100), train = the other 1,367; query = the test persons' first-view
  images, gallery = their second-view images (the classic metric samples one gallery
  image per person, 10 times; that is the evaluator's job).
- ``np_labeled_folders`` / ``np_detected_folders``: CUHK03-NP as distributed in image
  folders (``cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/
  PPPP_cC_N.png``, zhunzhong07/person-re-ranking; JPEG copies are read too); same splits and counts as ``np_*``,
  but ``person_id`` is the folder release's own 4-digit number and no h5py is needed.
Counts checked for the .mat configs: 1,467 persons in 5 camera pairs.
"""

from __future__ import annotations

import dataclasses
import io
import re

import numpy as np
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image

from data_builders import common, image_lists, manual_files

try:  # h5py reads MATLAB v7.3 files; only CUHK03 needs it.
    import h5py
except ImportError:  # pragma: no cover - reported when the builder runs
    h5py = None

DOMAIN = "cuhk03"
MAT = "cuhk-03.mat"
EXPECTED = f"cuhk03_release/{MAT} and cuhk03_new_protocol_config_{{labeled,detected}}.mat"
_NAME = re.compile(r"(\d)_(\d{3})_([12])_(\d{2})\.png")


@dataclasses.dataclass
class Cuhk03Config(image_lists.ReidConfig):
    """Which boxes and protocol.

    Attributes:
      boxes: 'labeled' (hand-drawn) or 'detected' (DPM detector).
      protocol: 'np' (CUHK03-NP from the .mat files), 'np_folders' (CUHK03-NP image
        folders) or 'classic' (20 test sets; split_index picks one).
      num_ids: persons over the 5 camera pairs (1,467).
      num_pairs: camera pairs (5).
    """

    boxes: str = "labeled"
    protocol: str = "np"
    num_ids: int = 1467
    num_pairs: int = 5


NP_COUNTS = {
    "labeled": {"train": (7368, 767), "query": (1400, 700), "gallery": (5328, 700)},
    "detected": {"train": (7365, 767), "query": (1400, 700), "gallery": (5332, 700)},
}


def _configs() -> list[Cuhk03Config]:
    out = [
        Cuhk03Config(name=f"np_{b}", description=f"CUHK03-NP, {b} boxes.", counts=NP_COUNTS[b],
                     num_cameras=2, boxes=b, protocol="np")
        for b in ("labeled", "detected")
    ]
    out += [
        Cuhk03Config(name=f"np_{b}_folders", description=f"CUHK03-NP image folders, {b} boxes.",
                     counts=NP_COUNTS[b], num_cameras=2, boxes=b, protocol="np_folders")
        for b in ("labeled", "detected")
    ]
    for b in ("labeled", "detected"):
        out += [
            Cuhk03Config(name=f"classic_{b}_s{k}", description=f"Classic test set {k + 1} of 20, {b} boxes.",
                         counts={"train": (None, 1367), "query": (None, 100), "gallery": (None, 100)},
                         num_cameras=2, boxes=b, protocol="classic", split_index=k)
            for k in range(20)
        ]
    return out


def image_name(pair: int, person: int, column: int) -> str:
    """torchreid's name for 1-based pair/person and 0-based column of the cell."""
    return f"{pair}_{person:03d}_{1 if column < 5 else 2}_{column + 1:02d}.png"


class Builder(image_lists.ManualBuilder):
    """CUHK03 from ``cuhk-03.mat`` (+ the CUHK03-NP protocol files)."""

    name = "cuhk03"
    BUILDER_CONFIGS = _configs()
    DEFAULT_CONFIG_NAME = "np_labeled"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request cuhk03_release.zip from the authors
    (http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html), extract it into the
    manual_dir (cuhk03_release/cuhk-03.mat must be on disk: HDF5 cannot be read from
    inside a zip), and for the np_* configs put cuhk03_new_protocol_config_labeled.mat and
    cuhk03_new_protocol_config_detected.mat (https://github.com/zhunzhong07/
    person-re-ranking/tree/master/evaluation/data/CUHK03) beside cuhk03_release/.
    Needs h5py (pip install h5py).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html",
            "@inproceedings{li2014deepreid, title={DeepReID: Deep Filter Pairing Neural Network "
            "for Person Re-identification}, author={Li, Wei and Zhao, Rui and Xiao, Tong and "
            "Wang, Xiaogang}, booktitle={CVPR}, year={2014}}",
            encoding_format="png",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        if cfg.protocol == "np_folders":
            return self._np_folders(dl_manager, cfg)
        if h5py is None:
            raise common.DatasetError(f"{DOMAIN}: reading {MAT} (MATLAB v7.3) needs h5py; pip install h5py.")
        manual = common.manual_dir(dl_manager, DOMAIN, EXPECTED)
        protocol_file = f"cuhk03_new_protocol_config_{cfg.boxes}.mat"
        markers = ["cuhk03_release/" + MAT] + ([protocol_file] if cfg.protocol == "np" else [])
        files = manual_files.locate_root(manual, DOMAIN, markers, ("cuhk03_release.zip",), EXPECTED)
        mat = h5py.File(files.local_path("cuhk03_release/" + MAT, DOMAIN), "r")
        refs = self._index(mat, cfg)  # name -> HDF5 reference of the image
        items = {}
        for name in refs:
            pair, person, view, _ = map(int, _NAME.fullmatch(name).groups())
            items[name] = image_lists.Item(name, pair * 1000 + person, view - 1,
                                           file_name=f"{cfg.boxes}/{name}")
        common.check_counts(DOMAIN, "persons", len({it.person_id for it in items.values()}), cfg.num_ids)
        if cfg.protocol == "np":
            splits = self._np_splits(files, protocol_file, items)
        else:
            splits = self._classic_splits(mat, cfg.split_index, items)

        def load(it: image_lists.Item) -> io.BytesIO:
            arr = np.asarray(mat[refs[it.rel]][()]).T
            buf = io.BytesIO()
            Image.fromarray(arr.astype(np.uint8)).convert("RGB").save(buf, format="PNG")
            buf.seek(0)
            return buf

        # h5py serializes every read behind one lock: one reader thread is as fast as many.
        return self._splits(files, splits, load=load, workers=1)

    def _np_folders(self, dl_manager: tfds.download.DownloadManager, cfg: Cuhk03Config) -> dict:
        folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
        expected = f"cuhk03-np/{cfg.boxes}/{{bounding_box_train,query,bounding_box_test}}/PPPP_cC_N.png"
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, expected), DOMAIN,
            [f"{cfg.boxes}/{f}" for f in folders.values()], ("cuhk03-np.zip", "CUHK03-NP.zip"), expected,
            depth=3,
        )
        splits = {}
        for split, folder in folders.items():
            splits[split] = []
            for rel, m in image_lists.scan_folder(files, f"{cfg.boxes}/{folder}", r"(\d{4})_c([12])_\w+\.(?:png|jpg)",
                                                  DOMAIN, "0001_c1_1.png"):
                splits[split].append(image_lists.Item(rel, int(m.group(1)), int(m.group(2)) - 1))
        return self._splits(files, splits)

    def _index(self, mat: object, cfg: Cuhk03Config) -> dict[str, object]:
        """Names and HDF5 references of every non-empty image cell."""
        try:
            pairs = mat[cfg.boxes][0]
            common.check_counts(DOMAIN, "camera pairs", len(pairs), cfg.num_pairs)
            refs = {}
            for p, pair_ref in enumerate(pairs, 1):
                cells = mat[pair_ref]  # stored transposed: 10 x persons
                for person in range(cells.shape[1]):
                    for column in range(cells.shape[0]):
                        ref = cells[column, person]
                        shape = mat[ref].shape
                        if len(shape) == 3 and 0 not in shape:
                            if shape[0] != 3:
                                raise common.DatasetError(
                                    f"{DOMAIN}: image {image_name(p, person + 1, column)} in {MAT} "
                                    f"has shape {shape[::-1]}, expected H x W x 3; the file looks damaged."
                                )
                            refs[image_name(p, person + 1, column)] = ref
            return refs
        except (KeyError, ValueError, TypeError) as e:
            raise common.DatasetError(
                f"{DOMAIN}: {MAT} does not have the CUHK03 layout ({e}); download it again."
            ) from e

    def _np_splits(self, files: manual_files.ManualFiles, protocol_file: str,
                   items: dict[str, image_lists.Item]) -> dict[str, list[image_lists.Item]]:
        try:
            cfg_mat = scipy.io.loadmat(io.BytesIO(files.read(protocol_file)))
            names = [str(np.asarray(x).ravel()[0]) for x in cfg_mat["filelist"].ravel()]
            idx = {k: cfg_mat[f"{k}_idx"].ravel().astype(int) - 1 for k in ("train", "query", "gallery")}
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise common.DatasetError(
                f"{DOMAIN}: cannot read {files.describe(protocol_file)!r} ({e}); download it again."
            ) from e
        splits = {}
        for split, rows in idx.items():
            splits[split] = []
            for r in rows:
                if names[r] not in items:
                    raise common.DatasetError(
                        f"{DOMAIN}: {protocol_file} lists {names[r]!r}, which {MAT} does not hold; "
                        "the two files do not belong together (boxes labeled vs detected?)."
                    )
                splits[split].append(items[names[r]])
        return splits

    def _classic_splits(self, mat: object, k: int,
                        items: dict[str, image_lists.Item]) -> dict[str, list[image_lists.Item]]:
        try:
            rows = np.asarray(mat[mat["testsets"][0][k]][()]).T.astype(int)
        except (KeyError, ValueError, IndexError) as e:
            raise common.DatasetError(f"{DOMAIN}: cannot read classic test set {k} from {MAT} ({e}).") from e
        test = {int(pair) * 1000 + int(person) for pair, person in rows}
        ordered = sorted(items.values(), key=lambda it: it.rel)
        return {
            "train": [it for it in ordered if it.person_id not in test],
            "query": [it for it in ordered if it.person_id in test and it.camera_id == 0],
            "gallery": [it for it in ordered if it.person_id in test and it.camera_id == 1],
        }
