"""DukeMTMC-VideoReID (Wu et al., "Exploit the Unknown Gradually: One-Shot Video-Based
Person Re-Identification by Stepwise Learning", CVPR 2018; frames from Ristani et al.,
ECCVW 2016).

Layout of ``DukeMTMC-VideoReID.zip``: ``DukeMTMC-VideoReID/{train,query,gallery}/PPPP/
TTTT/*.jpg``, one folder per tracklet; frames named ``0001_C6_F0099_X30823.jpg`` (person,
camera 1..8, frame, box) or, in early copies, ``0001C6F0099X30823.jpg`` (torchreid reads
both: KaiyangZhou/deep-person-reid ``torchreid/data/datasets/video/dukemtmcvidreid.py``).

Every frame is one example; ``tracklet_id`` numbers the split's tracklets in sorted
(person, folder) order, ``frame_id`` the frame's position (sorted by name). Counts
checked (the dataset's README and torchreid): train 2,196 tracklets / 702 ids, query
702 / 702, gallery 2,636 tracklets, 8 cameras. Frames are not decoded before writing
(about 800k; a broken one still stops the build and leaves no prepared dataset).

Note: the DukeMTMC data were withdrawn by Duke University in 2019.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "dukemtmc_video"
PATTERN = r"(\d{4})_?C(\d)_?F\d+_?X\d+\.jpg"
EXPECTED = "DukeMTMC-VideoReID/{train,query,gallery}/PPPP/TTTT/*.jpg"
SPLITS = ("train", "query", "gallery")


class Builder(image_lists.ManualBuilder):
    """DukeMTMC-VideoReID from a manual download (folder or zip)."""

    name = "dukemtmc_video"
    BUILDER_CONFIGS = [
        image_lists.ReidConfig(
            name="standard", description="The benchmark split.",
            counts={"train": (None, 702), "query": (None, 702)}, num_cameras=8,
            num_tracklets={"train": 2196, "query": 702, "gallery": 2636},
        )
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put DukeMTMC-VideoReID.zip, or its extracted DukeMTMC-VideoReID/ folder (train/,
    query/, gallery/), into the manual_dir. The original download
    (http://vision.cs.duke.edu/DukeMTMC/data/misc/DukeMTMC-VideoReID.zip) was withdrawn;
    use a copy your institution is entitled to.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "https://github.com/Yu-Wu/DukeMTMC-VideoReID",
            "@inproceedings{wu2018exploit, title={Exploit the Unknown Gradually: One-Shot "
            "Video-Based Person Re-Identification by Stepwise Learning}, author={Wu, Yu and Lin, "
            "Yutian and Dong, Xuanyi and Yan, Yan and Ouyang, Wanli and Yang, Yi}, "
            "booktitle={CVPR}, year={2018}}",
            video=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN, list(SPLITS),
            ("DukeMTMC-VideoReID.zip",), EXPECTED,
        )
        splits = {split: self._items(files, split) for split in SPLITS}
        return self._splits(files, splits, check_decode=False)

    def _items(self, files: manual_files.ManualFiles, split: str) -> list[image_lists.Item]:
        tracks: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
        for rel, m in image_lists.scan_folder(files, split, PATTERN, DOMAIN, "0001_C6_F0099_X30823.jpg",
                                              recursive=True):
            parts = rel.split("/")
            if len(parts) != 4 or parts[1] != m.group(1) or not 1 <= int(m.group(2)) <= 8:
                raise common.DatasetError(
                    f"{DOMAIN}: {files.describe(rel)!r} is not filed as {split}/PPPP/TTTT/<frame> under "
                    "its own person, or names a camera outside 1..8; re-extract the archive."
                )
            tracks.setdefault((parts[1], parts[2]), []).append((rel, int(m.group(1)), int(m.group(2)) - 1))
        items = []
        for t, key in enumerate(sorted(tracks)):
            frames = tracks[key]
            if len({cam for *_, cam in frames}) != 1:
                raise common.DatasetError(
                    f"{DOMAIN}: tracklet {split}/{key[0]}/{key[1]} mixes cameras; re-extract the archive."
                )
            items += image_lists.tracklet([f[0] for f in frames], frames[0][1], frames[0][2], t)
        return items
