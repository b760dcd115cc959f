"""CUHK-SYSU person crops (Xiao et al., "Joint Detection and Identification Feature
Learning for Person Search", CVPR 2017), as used for re-ID training.

Layout: ``cropped_images/pPPPPP_sSSSSS_N.jpg`` (``p11422_s16929_1.jpg``: person 11422 in
scene image s16929), the crops torchreid and domain-generalization work (MetaBIN) train
on (KaiyangZhou/deep-person-reid ``torchreid/data/datasets/image/cuhksysu.py``). The
official release holds full scene images plus box annotations; cutting the crops out of
it is not done here: build from a ``cropped_images/`` folder.

Training data only: one ``train`` split with every crop; CUHK-SYSU has no camera labels,
so ``camera_id`` is 0 (as torchreid). Counts checked: 34,574 images, 11,934 persons.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from data_builders import common, image_lists, manual_files

DOMAIN = "cuhk_sysu"
PATTERN = r"p(\d+)_s\d+_\d+\.jpg"
EXPECTED = "cropped_images/pPPPPP_sSSSSS_N.jpg (34,574 files)"


class Builder(image_lists.ManualBuilder):
    """CUHK-SYSU crops from a manual download (folder or zip)."""

    name = "cuhk_sysu"
    BUILDER_CONFIGS = [
        image_lists.ReidConfig(name="crops", description="All person crops, training only.",
                               counts={"train": (34574, 11934)}, num_cameras=1)
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Obtain CUHK-SYSU (http://www.ee.cuhk.edu.hk/~xgwang/PS/dataset.html) as person crops
    in a cropped_images/ folder (files pPPPPP_sSSSSS_N.jpg, the layout torchreid reads)
    and put that folder, or a zip holding it, into the manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return image_lists.info(
            self, __doc__, "http://www.ee.cuhk.edu.hk/~xgwang/PS/dataset.html",
            "@inproceedings{xiao2017joint, title={Joint Detection and Identification Feature "
            "Learning for Person Search}, author={Xiao, Tong and Li, Shuang and Wang, Bochao and "
            "Lin, Liang and Wang, Xiaogang}, booktitle={CVPR}, year={2017}}",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
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
