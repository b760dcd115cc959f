"""Grain loaders: index batches -> decoded, resized uint8 host batches.

The host only decodes and resizes (PIL; bilinear as torchvision's Resize default, or
bicubic as fast-reid and the clustering references ask: ``config.data.resize``); everything
random (flip, pad + crop, erasing, colour jitter) happens on the accelerator inside the
jitted step (see augment.py), from the step's rng. Batches stay uint8 until then, which
quarters the host-to-device traffic.

Grain runs the per-batch decode in worker threads (``ReadOptions.num_threads``) and
prefetches ahead of the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import grain
import numpy as np
from PIL import Image

from reid_jax.data import samplers, sources


RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def load_image(
    data: sources.ReidData, index: int, height: int, width: int, resize: str = "bilinear"
) -> np.ndarray:
    """Decodes example ``index`` and resizes it to (height, width); uint8 HxWx3."""
    img = data.picture(index)
    if img.size != (width, height):
        img = img.resize((width, height), RESAMPLE[resize])
    return np.asarray(img)


def _batch(
    data: sources.ReidData, idx: np.ndarray, height: int, width: int, resize: str
) -> dict[str, np.ndarray]:
    out = {
        "image": np.stack([load_image(data, int(i), height, width, resize) for i in idx]),
        "label": data.labels[idx],
        "person_id": data.person_ids[idx],
        "camera_id": data.camera_ids[idx],
        "domain": data.domains[idx],
        "index": idx.astype(np.int32),
    }
    if data.attributes is not None:
        out["attributes"] = data.attributes[idx]
    return out


def _loader(batches: list, fetch: object, num_threads: int) -> Iterator[dict[str, np.ndarray]]:
    ds = grain.MapDataset.source(batches).map(fetch)
    opts = grain.ReadOptions(num_threads=max(1, num_threads), prefetch_buffer_size=max(2, 2 * num_threads))
    return iter(ds.to_iter_dataset(read_options=opts))


def train_loader(
    data: sources.ReidData,
    batch_indices: np.ndarray,
    height: int,
    width: int,
    num_threads: int = 4,
    resize: str = "bilinear",
) -> Iterator[dict[str, np.ndarray]]:
    """Yields one host batch per row of ``batch_indices`` (from samplers.pk_batches).

    Each batch is a dict of NumPy arrays: image [B,H,W,3] uint8, label, person_id,
    camera_id, domain, index [B] int32, and attributes [B, M] int8 (-1 unknown) when
    the data has them.
    """
    rows = [np.asarray(r) for r in batch_indices]
    return _loader(rows, lambda r: _batch(data, r, height, width, resize), num_threads)


def eval_loader(
    data: sources.ReidData, batch_size: int, height: int, width: int, num_threads: int = 4,
    resize: str = "bilinear", rows: np.ndarray | None = None, part: slice = slice(None),
) -> tuple[int, Iterator[dict[str, np.ndarray]]]:
    """Every example (or every entry of ``rows``) once, in order, ``batch_size`` entries
    per batch; the last batch is padded with entry 0.

    ``rows`` [n] picks examples; [n, T] picks clips of T frames, each batch holding its
    clips' frames folded clip by clip (video networks). ``part``: the entries of each
    batch this process loads (``distributed.process_rows``); the others are not read.

    Returns:
      (number of batches, iterator of batches with an extra bool 'mask' [batch_size]
      marking the real entries of the whole batch, every process's part included).
    """
    rows = np.arange(len(data)) if rows is None else np.asarray(rows, np.int64)
    idx, mask = samplers.eval_batches(len(rows), batch_size)

    def fetch(b: int) -> dict[str, np.ndarray]:
        out = _batch(data, rows[idx[b][part]].reshape(-1), height, width, resize)
        out["mask"] = mask[b]
        return out

    return len(idx), _loader(list(range(len(idx))), fetch, num_threads)
