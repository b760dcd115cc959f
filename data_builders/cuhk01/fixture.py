"""A tiny fake CUHK01 in the real ``campus/PPPPIII.png`` layout, for tests and demos.

The pixels are synthetic (one flat colour per file that encodes person and image), so the
fixture holds no picture of anyone; build it with a config whose counts are shrunk, e.g.
``Cuhk01Config(name="tiny", num_ids=12, num_test_ids=5)``.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def colour(person_id: int, image_index: int) -> tuple[int, int, int]:
    """The flat RGB colour of fixture file ``PPPPIII.png``."""
    return (person_id * 20 % 256, image_index * 50, 7)


def make_campus(root: str, num_ids: int = 12, size: tuple[int, int] = (8, 4)) -> str:
    """Writes ``root/campus/PPPPIII.png``: 4 images per person (2 per camera).

    Args:
      root: the folder to create; it plays the manual_dir.
      num_ids: persons 0001..num_ids.
      size: (height, width) of every image.

    Returns:
      ``root``.
    """
    campus = os.path.join(root, "campus")
    os.makedirs(campus, exist_ok=True)
    for pid in range(1, num_ids + 1):
        for img in range(1, 5):
            pixels = np.full((*size, 3), colour(pid, img), np.uint8)
            Image.fromarray(pixels).save(os.path.join(campus, f"{pid:04d}{img:03d}.png"))
    return root
