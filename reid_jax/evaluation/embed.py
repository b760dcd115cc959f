"""Jitted feature extraction over the device mesh, every example embedded exactly once.

The eval loader pads the last batch; the mask drops the padding rows on the host.
Optional flip averaging adds the features of the mirrored image (as fast-reid's
TEST.FLIP), before any normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from reid_jax import distributed, reporting, sharding
from reid_jax.data import augment, pipeline, sources


def make_embed_fn(
    model: nn.Module, mesh: jax.sharding.Mesh, feature: str = "neck_features", flip: bool = False,
    method: str | None = None, clip_len: int = 0,
) -> Callable[[Any, jax.Array], jax.Array]:
    """Returns jitted ``embed(variables, uint8 images) -> float32 features``.

    Args:
      model: a module whose apply returns a dict holding ``feature``.
      mesh: the device mesh; images are sharded along 'data', variables replicated.
      feature: which output to use ('neck_features' after BNNeck, 'features' before).
      flip: also embed the mirrored images and add the two features.
      method: the model's entry point (video networks: 'images' or 'clips'); None =
        ``__call__``.
      clip_len: with ``method='clips'``: frames per clip; the images are clips folded
        frame by frame and one feature per clip comes out.
    """
    call: dict[str, Any] = {"train": False}
    if method is not None:
        call["method"] = method
    if clip_len:
        call["clip_len"] = clip_len

    def embed(variables: Any, images: jax.Array) -> jax.Array:
        x = augment.normalize(images)
        f = model.apply(variables, x, **call)[feature]
        if flip:
            f = f + model.apply(variables, x[:, :, ::-1], **call)[feature]
        return f.astype(np.float32)

    # Features come back replicated (gathered from the devices, and from every process
    # in a multi-process run): the protocols and the clustering need all of them.
    return jax.jit(
        embed,
        in_shardings=(sharding.replicated(mesh), sharding.data_sharding(mesh)),
        out_shardings=sharding.replicated(mesh),
    )


def eval_batch_size(requested: int, mesh: jax.sharding.Mesh) -> int:
    """Rounds the eval batch up to a multiple of the number of devices."""
    n = mesh.size
    return max(n, -(-requested // n) * n)


def extract_features(
    embed_fn: Callable[[Any, jax.Array], jax.Array],
    variables: Any,
    data: sources.ReidData,
    mesh: jax.sharding.Mesh,
    batch_size: int,
    height: int,
    width: int,
    num_threads: int = 4,
    desc: str = "embed",
    progress: bool = True,
    resize: str = "bilinear",
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Embeds every example of ``data`` (or only ``rows``, in that order) once.

    Returns:
      float32 [len(data) or len(rows), D] features on the host.
    """
    batch_size = eval_batch_size(batch_size, mesh)
    num, loader = pipeline.eval_loader(data, batch_size, height, width, num_threads, resize,
                                       rows, distributed.process_rows(mesh, batch_size))
    return _collect(embed_fn, variables, loader, num, mesh, desc, progress)


def _collect(
    embed_fn: Callable[[Any, jax.Array], jax.Array], variables: Any, loader: Any, num: int,
    mesh: jax.sharding.Mesh, desc: str, progress: bool,
) -> np.ndarray:
    """The features of the loader's batches (each process's part embedded together, all
    of them on every process), padding rows (mask False) dropped."""
    feats = []
    for batch in reporting.progress(loader, num, desc, progress and distributed.is_primary()):
        images = sharding.to_global({"image": batch["image"]}, mesh)["image"]
        f = np.asarray(jax.device_get(embed_fn(variables, images)))
        feats.append(f[batch["mask"]])
    return np.concatenate(feats, axis=0)


def extract_clip_features(
    embed_fn: Callable[[Any, jax.Array], jax.Array],
    variables: Any,
    data: sources.ReidData,
    clips: np.ndarray,
    mesh: jax.sharding.Mesh,
    batch_size: int,
    height: int,
    width: int,
    num_threads: int = 4,
    desc: str = "embed clips",
    progress: bool = True,
    resize: str = "bilinear",
) -> np.ndarray:
    """Embeds every clip once, in order (``embed_fn`` from ``make_embed_fn(...,
    method='clips', clip_len=T)``).

    Args:
      clips: [m, T] frame indices into ``data``.
      batch_size: frames per batch (rounded to whole clips, a multiple of the devices).

    Returns:
      float32 [m, D] clip features on the host.
    """
    per_batch = eval_batch_size(max(1, batch_size // clips.shape[1]), mesh)
    num, loader = pipeline.eval_loader(data, per_batch, height, width, num_threads, resize,
                                       clips, distributed.process_rows(mesh, per_batch))
    return _collect(embed_fn, variables, loader, num, mesh, desc, progress)
