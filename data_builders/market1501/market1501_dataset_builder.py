"""Market-1501 (Zheng et al., "Scalable Person Re-identification: A Benchmark", ICCV 2015).

Layout of the archive ``Market-1501-v15.09.15.zip``: ``bounding_box_train/`` (train),
``query/`` and ``bounding_box_test/`` (gallery), JPEG files named
``PPPP_cCsS_FFFFFF_BB.jpg`` (``0002_c1s1_000451_03.jpg``: person 0002, camera 1,
sequence 1, frame 000451, box 03). Person ``-1`` marks junk boxes, which are dropped at
build time (they count neither as matches nor as errors in the evaluation protocol);
person ``0000`` marks distractors, which stay in the gallery as negatives. Cameras
1..6 become ``camera_id`` 0..5. The same parsing as torchreid
(``([-\\d]+)_c(\\d)``, junk -1 skipped; KaiyangZhou/deep-person-reid,
``torchreid/data/datasets/image/market1501.py``).

Counts checked (torchreid's statistics and the README): train 12,936 images / 751 ids,
query 3,368 / 750, gallery 15,913 / 751 (19,732 files minus 3,819 junk; the 751 ids are
750 test persons plus distractor id 0), 6 cameras.

Config ``with_500k`` adds the 500,000 extra distractors of Market-1501+500k, read from
an ``images/`` folder beside the others (where torchreid expects them); their number is
not checked.

Attributes (version 1.1.0): every image has ``attributes``, the 30 binary attributes of
its identity from Lin et al.'s ``market_attribute.mat`` (27 annotated, ``age`` one-hot
into 4; names in ``ATTRIBUTE_NAMES``, reading and layout in
``data_builders/attribute_annotations.py``) when that file is in the manual_dir (or in
its ``Market-1501_Attribute/`` clone, or beside the image folders); -1 where unknown:
everywhere without the file, and for distractors and the 500k extra images.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from data_builders import attribute_annotations, common, image_lists, manual_files

DOMAIN = "market1501"
PATTERN = r"(-1|\d{4})_c(\d)s\d+_\d+_\d+\.jpg"
EXAMPLE = "0002_c1s1_000451_03.jpg"
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
EXPECTED = "Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/*.jpg"
ATTRIBUTES = attribute_annotations.MARKET
ATTRIBUTE_NAMES = ATTRIBUTES.names


@dataclasses.dataclass
class MarketConfig(image_lists.ReidConfig):
    """Published counts, and whether to add the 500k distractor folder to the gallery.

    Attributes:
      distractors_folder: '' (standard) or the folder of extra gallery distractors.
    """

    distractors_folder: str = ""


STANDARD_COUNTS = {"train": (12936, 751), "query": (3368, 750), "gallery": (15913, 751)}


class Builder(image_lists.ManualBuilder):
    """Market-1501 from a manual download (folder or zip)."""

    name = "market1501"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "Per-image 'attributes' (30, Lin et al.; -1 without market_attribute.mat).",
    }
    BUILDER_CONFIGS = [
        MarketConfig(name="standard", description="The benchmark: junk dropped, distractors kept.",
                     counts=STANDARD_COUNTS, num_cameras=6),
        MarketConfig(name="with_500k", description="Gallery plus the 500k distractors (images/).",
                     counts={k: v for k, v in STANDARD_COUNTS.items() if k != "gallery"},
                     num_cameras=6, distractors_folder="images"),
    ]
    DEFAULT_CONFIG_NAME = "standard"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download Market-1501-v15.09.15.zip from the authors' page
    (https://zheng-lab.cecs.anu.edu.au/Project/project_reid.html) and put the zip,
    or the extracted Market-1501-v15.09.15/ folder (bounding_box_train/, query/,
    bounding_box_test/), into the manual_dir. For the with_500k config also extract
    the 500k distractor images into Market-1501-v15.09.15/images/. Optional: the
    attribute annotations market_attribute.mat
    (https://github.com/vana77/Market-1501_Attribute) in the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=common.reid_features("jpeg", num_attributes=len(ATTRIBUTE_NAMES)),
            homepage="https://zheng-lab.cecs.anu.edu.au/Project/project_reid.html",
            citation=(
                "@inproceedings{zheng2015scalable, title={Scalable Person Re-identification: A "
                "Benchmark}, author={Zheng, Liang and Shen, Liyue and Tian, Lu and Wang, Shengjin "
                "and Wang, Jingdong and Tian, Qi}, booktitle={ICCV}, year={2015}}"
            ),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        markers = list(FOLDERS.values()) + ([cfg.distractors_folder] if cfg.distractors_folder else [])
        root = common.manual_dir(dl_manager, DOMAIN, EXPECTED)
        files = manual_files.locate_root(
            root, DOMAIN, markers, ("Market-1501-v15.09.15.zip", "Market-1501.zip"), EXPECTED,
        )
        splits = {split: self._items(files, folder) for split, folder in FOLDERS.items()}
        if cfg.distractors_folder:
            splits["gallery"] += self._items(files, cfg.distractors_folder)
        # Read before any image so that a malformed file stops the build at once.
        tables = attribute_annotations.load(ATTRIBUTES, [root, files.where], DOMAIN)
        return {
            split: attribute_annotations.attach(
                gen, attribute_annotations.split_tables(tables, split), len(ATTRIBUTE_NAMES)
            )
            for split, gen in self._splits(files, splits).items()
        }

    def _items(self, files: manual_files.ManualFiles, folder: str) -> list[image_lists.Item]:
        items = []
        for rel, m in image_lists.scan_folder(files, folder, PATTERN, DOMAIN, EXAMPLE):
            pid, cam = int(m.group(1)), int(m.group(2))
            if pid == -1:
                continue
            if not 1 <= cam <= 6:
                raise common.DatasetError(
                    f"{DOMAIN}: {files.describe(rel)!r} names camera {cam}; Market-1501 has cameras "
                    "1..6 (remove the file or re-extract the archive)."
                )
            items.append(image_lists.Item(rel, pid, cam - 1))
        return items
