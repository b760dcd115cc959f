"""The cluster memory of cluster contrast: one L2-normalised proxy per pseudo identity.

Dai, Wang, Yuan, Zhu & Tan, "Cluster Contrast for Unsupervised Person
Re-Identification", ACCV 2022 (official code: alibaba/cluster-contrast-reid,
``clustercontrast/models/cm.py``). Facts followed, from the official code:

* the memory is rebuilt at every pseudo-label round from the L2-normalised mean
  feature of each cluster (``memory.features = F.normalize(cluster_features)``);
* after each step, *for each sample of the batch in order*,
  ``M[y] <- m * M[y] + (1 - m) * f`` then ``M[y] <- M[y] / |M[y]|`` with m = 0.1
  (README commands, ``--momentum 0.1``); ``f`` is the L2-normalised feature;
* the 'hard' variant (``CM_Hard``, ``--use-hard``) updates each class present in the
  batch once, with the batch instance least similar to the *current* proxy
  (argmin of f . M[y]);
* both updates run in the backward pass, after the logits were computed with the
  memory as it was before the step (here: the update follows the loss, on the
  features of the forward pass, outside the gradient).

The memory is a plain array, padded to a fixed capacity so that the jitted step does
not recompile when the number of clusters changes between rounds; rows at and beyond
``num_clusters`` are zero and masked out of the logits.

Sequential semantics under jit: two samples of the same class in one batch make the
second update start from the first one's renormalised result, so the updates do not
commute and a scatter-add would be wrong. ``momentum_update`` runs a ``jax.lax.scan``
over the B samples of the (gathered) batch, each step reading one row, blending,
renormalising and writing it back (``dynamic_update_slice``): B sequential O(D) steps,
exactly the reference loop, negligible next to the network's forward/backward.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from reid_jax import vectors

# Cluster contrast README (Market-1501, MSMT17 commands): --momentum 0.1.
MOMENTUM = 0.1
_EPS = 1e-12


def init_memory(centroids: ArrayLike, capacity: int) -> np.ndarray:
    """A memory holding the (re-normalised) centroids, zero-padded to ``capacity`` rows.

    Args:
      centroids: [C, D] cluster centroids.
      capacity: number of rows of the memory (>= C).

    Returns:
      [capacity, D] float32 host array.
    """
    c = np.asarray(centroids, np.float32)
    if c.shape[0] > capacity:
        raise ValueError(f"{c.shape[0]} clusters do not fit a memory of {capacity} rows.")
    c = vectors.l2_normalize_np(c).astype(np.float32)
    out = np.zeros((capacity, c.shape[1]), np.float32)
    out[: c.shape[0]] = c
    return out


def momentum_update(
    memory: jax.Array, features: jax.Array, labels: jax.Array, momentum: float = MOMENTUM
) -> jax.Array:
    """Per-sample sequential momentum update (cluster contrast ``CM.backward``).

    Args:
      memory: [C, D] L2-normalised proxies.
      features: [B, D] L2-normalised features, in batch order.
      labels: [B] int pseudo labels (rows of ``memory``).
      momentum: weight m of the old proxy.

    Returns:
      [C, D] updated memory.
    """
    features = jax.lax.stop_gradient(features.astype(memory.dtype))

    def one(mem: jax.Array, xy: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        f, y = xy
        row = jax.lax.dynamic_slice_in_dim(mem, y, 1, axis=0)
        row = vectors.l2_normalize(momentum * row + (1.0 - momentum) * f[None, :])
        return jax.lax.dynamic_update_slice_in_dim(mem, row, y, axis=0), None

    memory, _ = jax.lax.scan(one, memory, (features, labels.astype(jnp.int32)))
    return memory


def hard_update(
    memory: jax.Array, features: jax.Array, labels: jax.Array, momentum: float = MOMENTUM
) -> jax.Array:
    """Hard-instance update (cluster contrast ``CM_Hard.backward``).

    Each class present in the batch is updated once, with its batch instance of lowest
    similarity to the proxy before the update. Classes are independent, so this is one
    vectorised scatter.

    Args:
      memory: [C, D] L2-normalised proxies.
      features: [B, D] L2-normalised features.
      labels: [B] int pseudo labels.
      momentum: weight m of the old proxy.

    Returns:
      [C, D] updated memory.
    """
    features = jax.lax.stop_gradient(features.astype(memory.dtype))
    labels = labels.astype(jnp.int32)
    b = labels.shape[0]
    sim = jnp.sum(features * memory[labels], axis=1)  # f_i . M[y_i]
    same = labels[:, None] == labels[None, :]
    # Instance j is the hardest of its class if no other instance of the class is
    # strictly less similar, or equally similar with a lower index (np.argmin's tie rule).
    earlier = jnp.arange(b)[None, :] < jnp.arange(b)[:, None]
    beaten = same & ((sim[None, :] < sim[:, None]) | ((sim[None, :] == sim[:, None]) & earlier))
    hardest = ~jnp.any(beaten, axis=1)  # [B]: one True per class present
    new_rows = vectors.l2_normalize(momentum * memory[labels] + (1.0 - momentum) * features)
    # Non-hardest instances write to an out-of-range row, which the scatter drops.
    target = jnp.where(hardest, labels, memory.shape[0])
    return memory.at[target].set(new_rows, mode="drop")
