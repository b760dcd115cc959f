"""What every reid_jax TFDS builder shares: the feature spec, manual_dir checks, validation.

Every builder yields examples with the same features so that one loader reads any
dataset:

- ``image``: the encoded picture (PNG or JPEG bytes as found in the archive; builders
  yield file objects or paths, never numpy arrays, because encoding an array needs
  TensorFlow and reid_jax builds without it).
- ``person_id``: the dataset's own identity number (0 = distractor, -1 = junk, where
  the dataset has them).
- ``label``: a contiguous 0..N-1 identity label on training splits, -1 elsewhere.
- ``camera_id``: 0-based camera index.
- ``file_name``: the path of the file inside the archive (or a synthetic name).
- ``domain``: the dataset (or rendering domain) the example comes from.
- ``tracklet_id`` / ``frame_id``: video datasets only (-1 for single images).
- ``attributes``: datasets with attribute annotations only: int8 [M], 1 / 0 for a binary
  attribute present / absent, -1 where unknown (the order is the builder's
  ``ATTRIBUTE_NAMES``).

Errors a user can meet (missing folder, wrong layout, unreadable file, wrong counts)
are raised as :class:`DatasetError` with one line that names the thing and the fix.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

# Largest picture a builder accepts: 40 megapixels, far above any re-ID crop (CUHK-SYSU's
# whole scenes are ~1 megapixel) and far below what would exhaust memory when decoded.
MAX_PIXELS = 40_000_000


class DatasetError(ValueError):
    """A problem with the user's data: the message names the file and the fix."""


def reid_features(
    encoding_format: str = "png", video: bool = False, num_attributes: int = 0
) -> tfds.features.FeaturesDict:
    """The FeaturesDict shared by every re-ID builder.

    Args:
      encoding_format: 'png' or 'jpeg', the format of the stored bytes.
      video: add ``tracklet_id`` and ``frame_id`` features.
      num_attributes: M > 0 adds ``attributes``, an int8 [M] tensor (-1 unknown).
    """
    spec = {
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format=encoding_format),
        "person_id": np.int32,
        "label": np.int32,
        "camera_id": np.int32,
        "file_name": tfds.features.Text(),
        "domain": tfds.features.Text(),
    }
    if video:
        spec["tracklet_id"] = np.int32
        spec["frame_id"] = np.int32
    if num_attributes > 0:
        spec["attributes"] = tfds.features.Tensor(shape=(num_attributes,), dtype=np.int8)
    return tfds.features.FeaturesDict(spec)


def require_dir(path: os.PathLike | str, dataset: str, expected: str) -> str:
    """Checks that ``path`` is an existing, non-empty folder.

    Args:
      path: the folder to check.
      dataset: the dataset's name, for the message.
      expected: what the folder should hold, e.g. "campus/0001001.png ... campus/0971004.png".

    Returns:
      ``path`` as a string.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise DatasetError(
            f"{dataset}: folder {path!r} does not exist; pass --manual_dir pointing at the "
            f"extracted archive (expected {expected})."
        )
    if not any(os.scandir(path)):
        raise DatasetError(f"{dataset}: folder {path!r} is empty; expected {expected}.")
    return path


def manual_dir(dl_manager: tfds.download.DownloadManager, dataset: str, expected: str) -> str:
    """``dl_manager.manual_dir`` as a string, or a DatasetError that says how to fix it.

    TFDS raises a bare AssertionError when the folder is missing or empty; this turns it
    into one line naming the folder and what belongs in it.
    """
    try:
        return os.fspath(dl_manager.manual_dir)
    except AssertionError as e:
        m = re.search(r"Manual directory (.*?) does not exist or is empty", str(e))
        where = f"folder {m.group(1)!r}" if m else "no manual_dir was given; it"
        raise DatasetError(
            f"{dataset}: {where} does not exist or is empty; download the dataset by hand and "
            f"pass --manual_dir pointing at it (expected {expected})."
        ) from None


def find_first_dir(root: str, candidates: Sequence[str], dataset: str, expected: str) -> str:
    """Returns the first of ``root/<candidate>`` that is a folder, else a DatasetError."""
    for name in candidates:
        p = os.path.join(root, name)
        if os.path.isdir(p):
            return p
    raise DatasetError(
        f"{dataset}: none of {list(candidates)} found in {root!r}; expected {expected} "
        "(is the archive extracted into --manual_dir?)."
    )


def read_image(path: str, dataset: str) -> io.BytesIO:
    """Reads an image file and checks that it decodes; returns its bytes as a file object.

    The bytes are stored as they are (no re-encoding); the check opens them with PIL so
    that a truncated or unreadable file is reported by name at build time, not at training.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DatasetError(
            f"{dataset}: cannot read image {path!r} ({e}); re-extract the archive or remove "
            "the file."
        ) from e
    return image_from_bytes(data, path, dataset)


def image_from_bytes(data: bytes, where: str, dataset: str) -> io.BytesIO:
    """Checks that encoded image bytes decode; returns them as a file object.

    Args:
      data: the encoded image as read from the archive.
      where: the file's location (path, or ``archive.zip!member``), named in errors.
      dataset: the dataset's name, for messages.

    Returns:
      The bytes unchanged, except grey/palette/RGBA pictures and formats other than
      PNG/JPEG (VIPeR's BMP), which are re-encoded as RGB PNG so that every stored image
      has 3 channels and a format every decoder reads.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.size[0] * im.size[1] > MAX_PIXELS:  # read from the header: no decoding
                    raise OSError(f"{im.size[0]} x {im.size[1]} pixels, over the "
                                  f"{MAX_PIXELS:,} a person picture can have (a "
                                  "decompression bomb?)")
                im.load()
                mode = im.mode
                if mode not in ("RGB", "L", "RGBA", "P"):
                    raise OSError(f"unsupported mode {mode}")
                if mode != "RGB" or im.format not in ("PNG", "JPEG"):
                    buf = io.BytesIO()
                    im.convert("RGB").save(buf, format="PNG")
                    buf.seek(0)
                    return buf
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as e:
        detail = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e))
        raise DatasetError(
            f"{dataset}: cannot read image {where!r} ({detail}); re-extract the archive or "
            "remove the file."
        ) from None
    return io.BytesIO(data)


def contiguous_labels(person_ids: Iterable[int]) -> dict[int, int]:
    """Maps sorted distinct person ids to 0..N-1 (the training label)."""
    return {pid: i for i, pid in enumerate(sorted(set(int(p) for p in person_ids)))}


def check_counts(dataset: str, what: str, got: int, expected: int, hint: str = "") -> None:
    """Raises DatasetError when a count read from disk differs from the published one."""
    if got != expected:
        raise DatasetError(
            f"{dataset}: found {got} {what}, the published dataset has {expected}; "
            f"the download looks incomplete or modified{'; ' + hint if hint else ''}."
        )


def make_example(
    image: io.BytesIO | str,
    person_id: int,
    camera_id: int,
    file_name: str,
    domain: str,
    label: int = -1,
    tracklet_id: int | None = None,
    frame_id: int | None = None,
    attributes: Sequence[int] | np.ndarray | None = None,
) -> dict:
    """Builds one example dict in the shared feature layout (``attributes``: [M], -1 unknown)."""
    ex = {
        "image": image,
        "person_id": int(person_id),
        "label": int(label),
        "camera_id": int(camera_id),
        "file_name": file_name,
        "domain": domain,
    }
    if tracklet_id is not None:
        ex["tracklet_id"] = int(tracklet_id)
        ex["frame_id"] = int(frame_id if frame_id is not None else -1)
    if attributes is not None:
        ex["attributes"] = np.asarray(attributes, np.int8)
    return ex


def split_summary(examples: Mapping[str, Sequence[dict]]) -> dict[str, tuple[int, int, int]]:
    """(images, identities, cameras) per split, for validation messages and tests."""
    out = {}
    for split, exs in examples.items():
        out[split] = (
            len(exs),
            len({e["person_id"] for e in exs}),
            len({e["camera_id"] for e in exs}),
        )
    return out
