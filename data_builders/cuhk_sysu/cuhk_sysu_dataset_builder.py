"""CUHK-SYSU person crops (Xiao et al., "Joint Detection and Identification Feature
Learning for Person Search", CVPR 2017), as used for re-ID training.

Training data only (one ``train`` split); CUHK-SYSU has no camera labels, so
``camera_id`` is 0 (as torchreid). Two sources, one config each:

- ``crops``: a ``cropped_images/`` folder of ``pPPPPP_sSSSSS_N.jpg`` files
  (``p11422_s16929_1.jpg``: person 11422 in scene s16929), the crops torchreid and
  domain-generalization work (MetaBIN) train on (KaiyangZhou/deep-person-reid
  ``torchreid/data/datasets/image/cuhksysu.py``). Counts checked: 34,574 images,
  11,934 persons.
- ``train_from_scenes``: the official release (``Image/SSM/*.jpg`` scene images and
  ``annotation/test/train_test/Train.mat``): every annotated box of the 5,532 training
  persons is cut out of its scene and stored as JPEG (quality 95), named like the crops
  above. ``Train.mat`` holds one struct per person (``idname``, ``nAppear``, ``scene``:
  ``imname``, ``idlocate`` = x, y, w, h in pixels, ``ishard``). Counts checked: 5,532
  persons; every scene must exist and every box lie inside its scene.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image

from data_builders import common, image_lists, manual_files

DOMAIN = "cuhk_sysu"
PATTERN = r"p(\d+)_s\d+_\d+\.jpg"
EXPECTED = "cropped_images/pPPPPP_sSSSSS_N.jpg (34,574 files)"
TRAIN_MAT = "annotation/test/train_test/Train.mat"
SCENES = "Image/SSM"
EXPECTED_SCENES = f"{SCENES}/*.jpg and {TRAIN_MAT} (the official release)"


@dataclasses.dataclass
class SysuConfig(image_lists.ReidConfig):
    """Which source to read.

    Attributes:
      from_scenes: cut the training persons out of the scene images (official release)
        instead of reading a cropped_images/ folder.
    """

    from_scenes: bool = False


def read_train_boxes(data: bytes, where: str) -> list[tuple[str, str, tuple[int, int, int, int]]]:
    """[(idname, scene image name, (x, y, w, h))] for every box in Train.mat."""
    try:
        persons = np.atleast_1d(scipy.io.loadmat(io.BytesIO(data), squeeze_me=True,
                                                 struct_as_record=False)["Train"])
        out = []
        for person in persons:
            person = np.atleast_1d(person).ravel()[0]
            for scene in np.atleast_1d(person.scene).ravel():
                box = tuple(int(round(float(v))) for v in np.asarray(scene.idlocate).ravel()[:4])
                out.append((str(person.idname), str(scene.imname), box))
        return out
    except (KeyError, AttributeError, ValueError, TypeError, IndexError) as e:
        raise common.DatasetError(f"{DOMAIN}: {where!r} does not have the CUHK-SYSU Train layout ({e}).") from e


class Builder(image_lists.ManualBuilder):
    """CUHK-SYSU crops from a manual download (folder or zip)."""

    name = "cuhk_sysu"
    BUILDER_CONFIGS = [
        SysuConfig(name="crops", description="All person crops (cropped_images/), training only.",
                   counts={"train": (34574, 11934)}, num_cameras=1),
        SysuConfig(name="train_from_scenes", description="Training persons cut out of the official scenes.",
                   counts={"train": (None, 5532)}, num_cameras=1, from_scenes=True),
    ]
    DEFAULT_CONFIG_NAME = "crops"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download CUHK-SYSU (http://www.ee.cuhk.edu.hk/~xgwang/PS/dataset.html). For the
    train_from_scenes config put the extracted release (Image/SSM/, annotation/) into the
    manual_dir; for the crops config put a cropped_images/ folder (files
    pPPPPP_sSSSSS_N.jpg, the layout torchreid reads), or a zip holding it, there.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://www.ee.cuhk.edu.hk/~xgwang/PS/dataset.html",
            "@inproceedings{xiao2017joint, title={Joint Detection and Identification Feature "
            "Learning for Person Search}, author={Xiao, Tong and Li, Shuang and Wang, Bochao and "
            "Lin, Liang and Wang, Xiaogang}, booktitle={CVPR}, year={2017}}",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        cfg = self.builder_config
        if cfg.from_scenes:
            return self._from_scenes(common.manual_dir(dl_manager, DOMAIN, EXPECTED_SCENES))
        files = manual_files.locate_root(
            common.manual_dir(dl_manager, DOMAIN, EXPECTED), DOMAIN, ["cropped_images"],
            ("cropped_images.zip", "cuhksysu.zip", "CUHK-SYSU.zip"), EXPECTED,
        )
        items = [
            image_lists.Item(rel, int(m.group(1)), 0)
            for rel, m in image_lists.scan_folder(files, "cropped_images", PATTERN, DOMAIN,
                                                  "p11422_s16929_1.jpg")
        ]
        return self._splits(files, {"train": items})

    def _from_scenes(self, manual_dir: str) -> dict:
        files = manual_files.locate_root(manual_dir, DOMAIN, [SCENES, TRAIN_MAT], ("CUHK-SYSU.zip",),
                                         EXPECTED_SCENES)
        boxes = read_train_boxes(files.read(TRAIN_MAT), files.describe(TRAIN_MAT))
        sizes: dict[str, tuple[int, int]] = {}
        items, seen = [], {}
        for idname, imname, (x, y, w, h) in boxes:
            rel = f"{SCENES}/{imname}"
            if imname not in sizes:
                if not files.exists(rel):
                    raise common.DatasetError(f"{DOMAIN}: scene {files.describe(rel)!r} listed in {TRAIN_MAT} is missing.")
                try:  # reads the header only
                    with Image.open(io.BytesIO(files.read(rel))) as im:
                        sizes[imname] = im.size
                except OSError as e:
                    raise common.DatasetError(f"{DOMAIN}: cannot read scene {files.describe(rel)!r} ({e}).") from e
            width, height = sizes[imname]
            if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
                raise common.DatasetError(
                    f"{DOMAIN}: box {(x, y, w, h)} of {idname} lies outside {imname} ({width}x{height}); "
                    f"{TRAIN_MAT} does not belong to these images."
                )
            stem = imname.rsplit(".", 1)[0]
            seen[idname, stem] = seen.get((idname, stem), 0) + 1
            name = f"{idname}_{stem}_{seen[idname, stem]}.jpg"
            items.append(image_lists.Item(f"{rel}#{x},{y},{w},{h}", int(idname.lstrip("p")), 0,
                                          file_name=f"cropped_images/{name}"))

        def load(it: image_lists.Item) -> io.BytesIO:
            rel, box = it.rel.split("#")
            x, y, w, h = map(int, box.split(","))
            try:
                with Image.open(io.BytesIO(files.read(rel))) as im:
                    crop = im.convert("RGB").crop((x, y, x + w, y + h))
            except OSError as e:
                raise common.DatasetError(f"{DOMAIN}: cannot read scene {files.describe(rel)!r} ({e}).") from e
            buf = io.BytesIO()
            crop.save(buf, format="JPEG", quality=95)
            buf.seek(0)
            return buf

        return self._splits(files, {"train": items}, load=load)
