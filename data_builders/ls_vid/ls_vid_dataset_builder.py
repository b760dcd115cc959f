"""LS-VID (Li, Wang, Tian, Gao, Zhang, "Global-Local Temporal Representations for Video
Person Re-Identification", ICCV 2019): 3,772 identities, 14,943 sequences, 15 cameras.

Layout of the LS-VID archive: ``tracklet_train/`` and ``tracklet_test/`` with the frames,
``list_sequence/list_seq_train.txt`` and ``list_seq_test.txt`` (one sequence per line:
``<path prefix of its frames> <person>``) and ``test/data/info_test.mat`` (MATLAB v7.3,
``query``: 1-based rows of the test list used as queries). Some copies move the last two
under ``info/`` (``info/list_sequence/``, ``info/data/info_test.mat``); both are read.
A sequence's frames are the files whose path starts with its prefix, in name order; the
third ``_`` field of a frame name is the camera (1..15, stored 0..14). Junk sequences
(person -1) are dropped. This follows the loaders published with the LS-VID baselines;
torchreid has no LS-VID class.

Splits: train (the train list), query (test rows in ``query``), gallery (the other test
rows). Every frame is one example; ``tracklet_id`` is the sequence's row in its list.
Counts checked: 3,772 persons and 14,943 sequences over both lists (junk included in
the sequence count), 15 cameras. Frames are not decoded before writing (about 3
million; a broken one still stops the build and leaves no prepared dataset).
"""

from __future__ import annotations

import bisect
import dataclasses
import io

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

try:
    import h5py
except ImportError:  # pragma: no cover - reported when needed
    h5py = None

DOMAIN = "ls_vid"
EXPECTED = ("tracklet_train/, tracklet_test/, list_sequence/list_seq_{train,test}.txt and "
            "test/data/info_test.mat (or info/list_sequence/, info/data/info_test.mat)")


@dataclasses.dataclass
class LsVidConfig(image_lists.ReidConfig):
    """Published totals.

    Attributes:
      num_ids: persons over both lists, junk excluded (3,772).
      num_sequences: lines over both lists (14,943).
    """

    num_ids: int = 3772
    num_sequences: int = 14943


def read_query_rows(data: bytes, where: str) -> np.ndarray:
    """0-based query rows from info_test.mat (MATLAB v7.3 via h5py, or older via scipy)."""
    hdf5 = b"\x89HDF\r\n\x1a\n"
    try:
        if hdf5 in (data[:8], data[512:520]):  # MATLAB v7.3 (512-byte header) or plain HDF5
            if h5py is None:
                raise common.DatasetError(f"{DOMAIN}: {where!r} is MATLAB v7.3; pip install h5py.")
            with h5py.File(io.BytesIO(data), "r") as f:
                q = np.asarray(f["query"][()])
        else:
            q = scipy.io.loadmat(io.BytesIO(data))["query"]
        return np.asarray(q).astype(int).ravel() - 1
    except (KeyError, ValueError, OSError) as e:
        raise common.DatasetError(f"{DOMAIN}: cannot read the query rows from {where!r} ({e}).") from e


class Builder(image_lists.ManualBuilder):
    """LS-VID from a manual download (folder or zip)."""

    name = "ls_vid"
    BUILDER_CONFIGS = [LsVidConfig(name="standard", description="Train list; test list split into query/gallery.",
                                   num_cameras=15)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request LS-VID from its authors (https://www.pkuvmc.com/dataset.html) and put the
    extracted LS-VID/ folder (tracklet_train/, tracklet_test/, list_sequence/, test/data/),
    or the zip holding it, into the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "https://www.pkuvmc.com/dataset.html",
            "@inproceedings{li2019global, title={Global-Local Temporal Representations for Video "
            "Person Re-Identification}, author={Li, Jianing and Wang, Jingdong and Tian, Qi and "
            "Gao, Wen and Zhang, Shiliang}, booktitle={ICCV}, year={2019}}",
            video=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN, ["tracklet_train", "tracklet_test"],
            ("LS-VID.zip", "LSVID.zip"), EXPECTED,
        )
        info = "" if files.exists("list_sequence") else "info/"
        query_file = "info/data/info_test.mat" if info else "test/data/info_test.mat"
        for rel in (f"{info}list_sequence/list_seq_train.txt", f"{info}list_sequence/list_seq_test.txt", query_file):
            if not files.exists(rel):
                raise common.DatasetError(f"{DOMAIN}: {files.describe(rel)!r} is missing; expected {EXPECTED}.")
        frames = sorted(files.list("tracklet_train") + files.list("tracklet_test"))
        train, n_train, ids_train = self._read_list(files, f"{info}list_sequence/list_seq_train.txt", frames)
        test, n_test, ids_test = self._read_list(files, f"{info}list_sequence/list_seq_test.txt", frames)
        common.check_counts(DOMAIN, "sequences", n_train + n_test, cfg.num_sequences)
        common.check_counts(DOMAIN, "persons", len(ids_train | ids_test), cfg.num_ids)
        query = set(read_query_rows(files.read(query_file), files.describe(query_file)).tolist())
        splits = {
            "train": [it for items in train.values() for it in items],
            "query": [it for row, items in test.items() if row in query for it in items],
            "gallery": [it for row, items in test.items() if row not in query for it in items],
        }
        return self._splits(files, splits, check_decode=False)

    def _read_list(self, files: manual_files.ManualFiles, rel: str,
                   frames: list[str]) -> tuple[dict[int, list[image_lists.Item]], int, set[int]]:
        """(row -> frames of non-junk sequences, number of lines, non-junk person ids)."""
        out: dict[int, list[image_lists.Item]] = {}
        lines = [ln for ln in files.read(rel).decode().splitlines() if ln.strip()]
        for row, line in enumerate(lines):
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise common.DatasetError(
                    f"{DOMAIN}: line {row + 1} of {files.describe(rel)!r} reads {line!r}; lines are "
                    "'<frame path prefix> <person>'."
                )
            pid = int(parts[1])
            if pid == -1:
                continue
            lo = bisect.bisect_left(frames, parts[0])
            hi = bisect.bisect_left(frames, parts[0] + "\U0010ffff")
            seq = frames[lo:hi]
            fields = seq[0].rsplit("/", 1)[-1].split("_") if seq else []
            if len(fields) < 4 or not fields[2].isdigit() or not 1 <= int(fields[2]) <= 15:
                raise common.DatasetError(
                    f"{DOMAIN}: sequence {parts[0]!r} (line {row + 1} of {rel}) has no frames with a "
                    "camera 1..15 in the third '_' field; re-extract the archive."
                )
            out[row] = image_lists.tracklet(seq, pid, int(fields[2]) - 1, row)
        return out, len(lines), {it[0].person_id for it in out.values()}
