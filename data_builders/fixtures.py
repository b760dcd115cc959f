"""Tiny synthetic pictures for fixture tests that rebuild a dataset's real file layout.

The pixels are flat colours, so a fixture holds no picture of anyone; the layout and file
names are the real ones, so the builders meet the same paths as with the download.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP"}


def write_image(path: str, rgb: tuple[int, int, int] = (90, 120, 30),
                size: tuple[int, int] = (8, 4)) -> str:
    """Writes a flat-colour picture of ``size`` (height, width); the format follows the suffix."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    pixels = np.full((*size, 3), rgb, np.uint8)
    Image.fromarray(pixels).save(path, format=_FORMATS[os.path.splitext(path)[1].lower()])
    return path


def write_text(path: str, lines: list[str]) -> str:
    """Writes a text file (list files, split files) with one entry per line."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def write_attribute_mat(path: str, mat_key: str, tables: dict[str, dict[str, list]]) -> str:
    """Writes an attribute file in the layout of Lin et al.'s market/duke_attribute.mat.

    Args:
      path: the .mat file to write.
      mat_key: the top-level struct ('market_attribute' or 'duke_attribute').
      tables: struct ('train' / 'test') -> field -> one value per identity, with the
        field 'image_index' holding the identities as 4-digit strings ('0002').

    Returns:
      ``path``. Each field is written as a 1xN uint8 row and image_index as a 1xN cell
      of strings, as in the released files.
    """
    content = {}
    for split, fields in tables.items():
        struct = {}
        for name, values in fields.items():
            if name == "image_index":
                cell = np.empty((1, len(values)), dtype=object)
                for i, v in enumerate(values):
                    cell[0, i] = v
                struct[name] = cell
            else:
                struct[name] = np.asarray(values, np.uint8).reshape(1, -1)
        content[split] = struct
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    scipy.io.savemat(path, {mat_key: content})
    return path


def build(builder_cls: type, config: tfds.core.BuilderConfig, manual_dir: str,
          data_dir: str) -> tfds.core.DatasetBuilder:
    """Prepares ``builder_cls`` with ``config`` (a BuilderConfig, e.g. with shrunk counts)."""
    builder = builder_cls(config=config, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


def read_splits(builder: tfds.core.DatasetBuilder) -> dict[str, list[dict]]:
    """Every example of every split, images decoded; Text features come back as str."""
    out = {}
    for split in builder.info.splits:
        source = builder.as_data_source(split)
        exs = [source[i] for i in range(len(source))]
        for ex in exs:
            for k in ("file_name", "domain"):
                ex[k] = ex[k].decode()
        out[split] = sorted(exs, key=lambda e: e["file_name"])
    return out
