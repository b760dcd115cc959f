"""Ranked-list pictures: each query beside its top-k gallery images.

The gallery is ranked exactly as the Market-1501 protocol ranks it
(``protocols.ranked_valid_gallery``: stable sort, same-identity-same-camera images and
junk removed), so the picture shows what CMC/mAP scored. A green border marks a true
match, a red border a false one (the convention of torchreid's
``visualize_ranked_results``, Zhou & Xiang, "Torchreid", arXiv:1910.10093).

Layout (every image is H x W; ``b`` = ``border``): one row per query, the query in
column 0 with a grey border, then a gap of ``gap`` pixels, then the top-k gallery
images. Each cell is (H + 2b) x (W + 2b); the gallery cell j (0-based) starts at
x = (W + 2b) + gap + j * (W + 2b); row i starts at y = i * (H + 2b). Missing entries
(fewer than k kept gallery images) stay white.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from reid_jax.evaluation import protocols

GREEN = (0, 200, 0)
RED = (220, 0, 0)
GREY = (128, 128, 128)
WHITE = (255, 255, 255)


def _as_rgb(images: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f'{name} must be uint8, got {arr.dtype}.')
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise ValueError(f'{name} must be NHWC with 1 or 3 channels, got {arr.shape}.')
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def _framed(image: np.ndarray, colour: tuple[int, int, int], border: int) -> np.ndarray:
    h, w, _ = image.shape
    cell = np.empty((h + 2 * border, w + 2 * border, 3), np.uint8)
    cell[...] = colour
    cell[border:border + h, border:border + w] = image
    return cell


def save_ranked_list(
    path: str | os.PathLike,
    query_images: ArrayLike,
    gallery_images: ArrayLike,
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    query_indices: ArrayLike,
    topk: int = 10,
    border: int = 4,
    gap: int = 8,
) -> str:
    """Writes a PNG grid of queries and their top-k valid gallery images.

    Args:
      path: output file (parent folders are created).
      query_images: [q, H, W, C] uint8 query pictures (C = 1 or 3).
      gallery_images: [g, H, W, C] uint8 gallery pictures of the same size.
      distmat: [q, g] query-gallery distances.
      q_pids: [q] query identities.
      g_pids: [g] gallery identities.
      q_camids: [q] query cameras.
      g_camids: [g] gallery cameras.
      query_indices: which queries to draw, one row each, in this order.
      topk: gallery images per row.
      border: border width in pixels.
      gap: white space between the query column and the gallery columns.

    Returns:
      ``path`` as a string.
    """
    q_imgs = _as_rgb(query_images, 'query_images')
    g_imgs = _as_rgb(gallery_images, 'gallery_images')
    if q_imgs.shape[1:] != g_imgs.shape[1:]:
        raise ValueError(f'Query and gallery images differ in size: {q_imgs.shape} vs {g_imgs.shape}.')
    distmat = np.asarray(distmat)
    q_pids = np.asarray(q_pids).astype(np.int64).reshape(-1)
    q_camids = np.asarray(q_camids).astype(np.int64).reshape(-1)
    rows = np.asarray(query_indices, np.int64).reshape(-1)
    h, w = q_imgs.shape[1:3]
    cell_h, cell_w = h + 2 * border, w + 2 * border
    canvas = np.full((max(len(rows), 1) * cell_h, cell_w + gap + topk * cell_w, 3), 255, np.uint8)
    for r, qi in enumerate(rows):
        y = r * cell_h
        canvas[y:y + cell_h, :cell_w] = _framed(q_imgs[qi], GREY, border)
        ranked, is_match = protocols.ranked_valid_gallery(
            distmat[qi], q_pids[qi], q_camids[qi], g_pids, g_camids
        )
        for j, (gi, good) in enumerate(zip(ranked[:topk], is_match[:topk])):
            x = cell_w + gap + j * cell_w
            canvas[y:y + cell_h, x:x + cell_w] = _framed(g_imgs[gi], GREEN if good else RED, border)
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    Image.fromarray(canvas).save(path, format='PNG')
    return path
