"""Pair scoring at evaluation scale: every (query, gallery) pair through a pair network.

A pair network (``reid_jax/models/pairwise.py``) splits into ``embed`` (one picture) and
``compare`` (a pair). Each picture of the query and gallery sets is embedded once
(``trunk_features``, jitted over the mesh as ``embed.extract_features``); then
``iter_pair_distances`` scores one block of ``query_block x gallery_block`` pairs per
jitted call, the gallery block sharded over the mesh's 'data' axis and the queries
replicated, and yields the distances of ``query_block`` queries against the whole gallery
at a time, which ``evaluate.stats_of_blocks`` reduces to protocol statistics: no more than
one query block's row of the query x gallery matrix is ever on the host. Shapes are fixed
(the last blocks are padded), so a whole evaluation compiles once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from reid_jax import sharding
from reid_jax.data import augment, sources
from reid_jax.evaluation import distance, embed

QUERY_BLOCK = 8  # queries per scoring call; the gallery block is pair_block // QUERY_BLOCK
PAIR_CHUNK = 8  # pairs per step of the scoring loop inside a call (CPU: fastest of 4-32)


def is_pairwise(model: nn.Module) -> bool:
    """True for the networks ranked through pair scores."""
    return bool(getattr(model, "pairwise", False))


def make_trunk_fn(model: nn.Module, mesh: jax.sharding.Mesh) -> Callable[[Any, jax.Array], jax.Array]:
    """Jitted ``trunk(variables, uint8 images) -> model.embed`` of every picture."""

    def trunk(variables: Any, images: jax.Array) -> jax.Array:
        out = model.apply(variables, augment.normalize(images), train=False, method="embed")
        return out.astype(jnp.float32)

    return jax.jit(trunk, in_shardings=(sharding.replicated(mesh), sharding.data_sharding(mesh)),
                   out_shardings=sharding.replicated(mesh))


def trunk_features(
    model: nn.Module, variables: Any, data: sources.ReidData, mesh: jax.sharding.Mesh,
    batch_size: int, height: int, width: int, num_threads: int = 4, desc: str = "embed",
    progress: bool = True, resize: str = "bilinear",
) -> np.ndarray:
    """The per-picture part of a pair network for every example of ``data``, in order."""
    return embed.extract_features(make_trunk_fn(model, mesh), variables, data, mesh, batch_size,
                                  height, width, num_threads, desc, progress, resize)


def chunk_for(n: int, largest: int = 8) -> int:
    """The largest divisor of ``n`` up to ``largest``: chunks that tile n pairs."""
    return max(c for c in range(1, min(largest, n) + 1) if n % c == 0)


def compare_in_chunks(model: nn.Module, variables: Any, first: jax.Array, second: jax.Array,
                      chunk: int = PAIR_CHUNK, train: bool = False) -> dict[str, jax.Array]:
    """``model.compare`` of n pairs, ``chunk`` pairs at a time (``lax.map``), outputs
    concatenated. A pair network's middle maps are large (IDLA: 277k values per pair
    and direction); small chunks keep them in reused buffers, 3x faster on CPU than one
    call over 512 pairs. For networks without BatchNorm in ``compare`` (IDLA) the result
    is the same as one call; n must be a multiple of ``chunk`` (else one call;
    ``chunk_for`` picks one that is)."""
    n = first.shape[0]
    if n <= chunk or n % chunk:
        return model.apply(variables, first, second, train=train, method="compare")

    def one(ab: tuple[jax.Array, jax.Array]) -> dict[str, jax.Array]:
        return model.apply(variables, ab[0], ab[1], train=train, method="compare")

    split = lambda x: x.reshape(n // chunk, chunk, *x.shape[1:])  # noqa: E731
    out = jax.lax.map(one, (split(first), split(second)))
    return jax.tree.map(lambda x: x.reshape(n, *x.shape[2:]), out)


def make_score_fn(model: nn.Module, mesh: jax.sharding.Mesh) -> Callable[..., jax.Array]:
    """Jitted ``score(variables, q [bq, ...], g [bg, ...]) -> [bq, bg]`` pair distances.

    The gallery block is split over the mesh's 'data' axis (``shard_map``): each device
    scores every query of the block against its share of the gallery.
    """

    def local(variables: Any, q: jax.Array, g: jax.Array) -> jax.Array:
        bq, bg = q.shape[0], g.shape[0]
        first = jnp.repeat(q, bg, axis=0)
        second = jnp.tile(g, (bq,) + (1,) * (g.ndim - 1))
        out = compare_in_chunks(model, variables, first, second, chunk_for(bq * bg, PAIR_CHUNK))
        return out["pair_distance"].reshape(bq, bg)

    score = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(), P("data")),
                          out_specs=P(None, "data"))
    return jax.jit(score, in_shardings=(sharding.replicated(mesh), sharding.replicated(mesh),
                                        sharding.data_sharding(mesh)),
                   out_shardings=sharding.replicated(mesh))


def block_shape(pair_block: int, num_devices: int) -> tuple[int, int]:
    """(queries, gallery pictures) per scoring call: about ``pair_block`` pairs, the
    gallery block a multiple of the devices."""
    bq = max(1, min(QUERY_BLOCK, pair_block))
    bg = max(1, pair_block // bq)
    return bq, -(-bg // num_devices) * num_devices


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    if x.shape[0] == rows:
        return x
    return np.concatenate([x, np.zeros((rows - x.shape[0],) + x.shape[1:], x.dtype)])


def iter_pair_distances(
    model: nn.Module, variables: Any, query: np.ndarray, gallery: np.ndarray,
    mesh: jax.sharding.Mesh, pair_block: int = 256,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(start, [bq, g] distances)`` of consecutive query blocks.

    Args:
      model: a pair network.
      variables: its evaluation variables.
      query, gallery: ``trunk_features`` of the two sets.
      mesh: the device mesh.
      pair_block: pairs per jitted call (memory: the pair part of the network on that
        many pairs).
    """
    bq, bg = block_shape(pair_block, mesh.size)
    score = make_score_fn(model, mesh)
    ng = gallery.shape[0]
    g_blocks = [sharding.split_host(_pad_rows(gallery[s:s + bg], bg), mesh)
                for s in range(0, ng, bg)]
    for start in range(0, query.shape[0], bq):
        rows = min(bq, query.shape[0] - start)
        q = _pad_rows(query[start:start + rows], bq)
        outs = [score(variables, q, g) for g in g_blocks]  # dispatched, then gathered
        block = np.concatenate([np.asarray(o) for o in outs], axis=1)[:rows, :ng]
        yield start, block


def pair_distance_matrix(
    model: nn.Module, variables: Any, query: np.ndarray, gallery: np.ndarray,
    mesh: jax.sharding.Mesh, pair_block: int = 256,
) -> np.ndarray:
    """The whole [q, g] matrix of pair distances on the host (small sets, re-ranking)."""
    return distance.collect_blocks(
        iter_pair_distances(model, variables, query, gallery, mesh, pair_block),
        query.shape[0], gallery.shape[0])
