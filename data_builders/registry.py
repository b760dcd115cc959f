"""An explicit map from dataset name to the module that defines its TFDS builder.

Nothing registers itself on import: adding a dataset means adding a line here.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import types

import tensorflow_datasets as tfds

from data_builders import common

# name -> module holding a `Builder(tfds.core.GeneratorBasedBuilder)` class.
MODULES: dict[str, str] = {
    "synthetic_persons": "data_builders.synthetic_persons.synthetic_persons_dataset_builder",
    "cuhk01": "data_builders.cuhk01.cuhk01_dataset_builder",
    "market1501": "data_builders.market1501.market1501_dataset_builder",
    "dukemtmc_reid": "data_builders.dukemtmc_reid.dukemtmc_reid_dataset_builder",
    "msmt17": "data_builders.msmt17.msmt17_dataset_builder",
    "viper": "data_builders.viper.viper_dataset_builder",
    "grid": "data_builders.grid.grid_dataset_builder",
    "prid2011": "data_builders.prid2011.prid2011_dataset_builder",
    "ilids": "data_builders.ilids.ilids_dataset_builder",
    "cuhk03": "data_builders.cuhk03.cuhk03_dataset_builder",
    "cuhk02": "data_builders.cuhk02.cuhk02_dataset_builder",
    "cuhk_sysu": "data_builders.cuhk_sysu.cuhk_sysu_dataset_builder",
    "mars": "data_builders.mars.mars_dataset_builder",
    "ilids_vid": "data_builders.ilids_vid.ilids_vid_dataset_builder",
    "prid2011_video": "data_builders.prid2011_video.prid2011_video_dataset_builder",
    "dukemtmc_video": "data_builders.dukemtmc_video.dukemtmc_video_dataset_builder",
    "ls_vid": "data_builders.ls_vid.ls_vid_dataset_builder",
    "custom_folder": "data_builders.custom_folder.custom_folder_dataset_builder",
}

# The video (tracklet) datasets; synthetic_persons has video configs too ('video', 'video_tiny').
VIDEO: tuple[str, ...] = ("mars", "ilids_vid", "prid2011_video", "dukemtmc_video", "ls_vid")

DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")


def data_dir_or_default(data_dir: str | None) -> str:
    """``data_dir``, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (expanded)."""
    d = data_dir or os.environ.get("TFDS_DATA_DIR") or DEFAULT_DATA_DIR
    return os.path.expanduser(d)


def builder_class(name: str) -> type[tfds.core.GeneratorBasedBuilder]:
    """The builder class for a dataset name (without '/config')."""
    if name not in MODULES:
        raise common.DatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(MODULES))}."
        )
    return importlib.import_module(MODULES[name]).Builder


def _prepared_copy(data_dir: str, dataset: str, config_name: str) -> str | None:
    """The newest prepared version folder of ``dataset/config_name`` under data_dir, if any."""
    root = os.path.join(data_dir, dataset, config_name)
    if not os.path.isdir(root):
        return None
    versions = [
        v for v in os.listdir(root)
        if os.path.exists(os.path.join(root, v, "dataset_info.json"))
    ]
    if not versions:
        return None
    newest = max(versions, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))
    return os.path.join(root, newest)


def get_builder(
    name: str,
    data_dir: str | None = None,
    config: tfds.core.BuilderConfig | None = None,
) -> tfds.core.GeneratorBasedBuilder:
    """Instantiates a builder writing ArrayRecord files.

    Args:
      name: 'dataset' or 'dataset/config', e.g. 'cuhk01/p486_s0'.
      data_dir: where the prepared dataset lives (see data_dir_or_default).
      config: a config object instead of a named one (e.g. custom_folder's, or a
        published config with shrunk counts in tests); ``name`` is then the dataset only.
    """
    dataset, _, config_name = name.partition("/")
    cls = builder_class(dataset)
    if config_name and config_name not in cls.builder_configs and config is None:
        # A copy prepared with a config object (custom_folder, shrunk test configs) is
        # read back by name from its folder.
        prepared = _prepared_copy(data_dir_or_default(data_dir), dataset, config_name)
        if prepared:
            return tfds.builder_from_directory(prepared)
        raise common.DatasetError(
            f"{dataset}: unknown config {config_name!r} and no prepared copy of it; choose one "
            f"of {', '.join(cls.builder_configs)}."
        )
    kwargs = {"data_dir": data_dir_or_default(data_dir), "file_format": "array_record"}
    if config is not None:
        kwargs["config"] = config
    elif config_name:
        kwargs["config"] = config_name
    return cls(**kwargs)


# TFDS's writer keeps up to shuffle.MAX_MEM_BUFFER_SIZE (1 GB) of a split in memory, then
# spills it to temporary bucket files in the data dir through tf.io.gfile, which needs
# TensorFlow. Without TensorFlow we hand the shuffler plain local files instead, so a
# large split (Market-1501 + 500k distractors, MSMT17, the video sets) streams to disk.
class _NeverRaisedError(Exception):
    """Stands in for tf.errors.ResourceExhaustedError, which plain files never raise."""


_LOCAL_FILES = types.SimpleNamespace(
    io=types.SimpleNamespace(
        gfile=types.SimpleNamespace(GFile=open, exists=os.path.exists, remove=os.remove)
    ),
    errors=types.SimpleNamespace(ResourceExhaustedError=_NeverRaisedError),
)


def spill_to_local_files_without_tensorflow() -> None:
    """Lets the TFDS shuffler spill to local files when TensorFlow is not installed."""
    if importlib.util.find_spec("tensorflow") is None:
        from tensorflow_datasets.core import shuffle

        shuffle.tf = _LOCAL_FILES


def prepare(
    name: str,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    overwrite: bool = False,
    config: tfds.core.BuilderConfig | None = None,
) -> tfds.core.GeneratorBasedBuilder:
    """Builds the dataset if it is not built yet and returns its builder.

    Args:
      name: 'dataset' or 'dataset/config'.
      data_dir: where the prepared dataset lives (see data_dir_or_default).
      manual_dir: the folder holding the manual download (datasets that need one).
      overwrite: rebuild even if a prepared copy exists.
      config: a config object (see get_builder).
    """
    builder = get_builder(name, data_dir=data_dir, config=config)
    spill_to_local_files_without_tensorflow()
    dl_config = tfds.download.DownloadConfig(
        manual_dir=os.path.expanduser(manual_dir) if manual_dir else None,
        download_mode=(
            tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
            if overwrite
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
        ),
    )
    builder.download_and_prepare(download_config=dl_config)
    return builder


def config_names(name: str) -> list[str]:
    """The config names of a dataset ([] for a builder without configs)."""
    return list(builder_class(name).builder_configs)
