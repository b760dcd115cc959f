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

from reid_jax import reporting, sharding
from reid_jax.data import augment, pipeline, sources


def make_embed_fn(
    model: nn.Module, mesh: jax.sharding.Mesh, feature: str = "neck_features", flip: bool = False
) -> Callable[[Any, jax.Array], jax.Array]:
    """Returns jitted ``embed(variables, uint8 images) -> float32 features``.

    Args:
      model: a module whose apply returns a dict holding ``feature``.
      mesh: the device mesh; images are sharded along 'data', variables replicated.
      feature: which output to use ('neck_features' after BNNeck, 'features' before).
      flip: also embed the mirrored images and add the two features.
    """

    def embed(variables: Any, images: jax.Array) -> jax.Array:
        x = augment.normalize(images)
        f = model.apply(variables, x, train=False)[feature]
        if flip:
            f = f + model.apply(variables, x[:, :, ::-1], train=False)[feature]
        return f.astype(np.float32)

    return jax.jit(
        embed,
        in_shardings=(sharding.replicated(mesh), sharding.data_sharding(mesh)),
        out_shardings=sharding.data_sharding(mesh),
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
) -> np.ndarray:
    """Embeds every example of ``data`` once, in order.

    Returns:
      float32 [len(data), D] features on the host.
    """
    batch_size = eval_batch_size(batch_size, mesh)
    num, loader = pipeline.eval_loader(data, batch_size, height, width, num_threads, resize)
    feats = []
    for batch in reporting.progress(loader, num, desc, progress):
        images = sharding.to_global({"image": batch["image"]}, mesh)["image"]
        f = np.asarray(jax.device_get(embed_fn(variables, images)))
        feats.append(f[batch["mask"]])
    return np.concatenate(feats, axis=0)
