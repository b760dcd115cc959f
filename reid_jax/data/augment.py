"""Training augmentations as pure jnp functions of an explicit rng, run inside the jitted step.

Per-image randomness comes from splitting the step rng once per image (``jax.vmap``),
so results do not depend on how the batch is sharded over devices.

Constants: ImageNet mean/std (torchvision); pad 10 + random crop, and random erasing as
Zhong et al.'s RandomErasing (AAAI 2020) that BoT, cluster contrast, PPLR and MMT use:
p 0.5, area 0.02-0.4, aspect ratio uniform in [0.3, 1/0.3], up to 100 tries, the box
filled with the numbers (0.485, 0.456, 0.406) written *after* normalisation (so not the
mean pixel). ``config.aug`` selects the variants of the other references: CAP's
smaller boxes (0.2), torchvision's log-uniform ratio and 10 tries (fast-reid), the
mean pixel as fill.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# NumPy constants: importing reid_jax must not start a JAX backend (jax.distributed
# is initialised after the imports).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# Zhong et al.'s RandomErasing default `mean`, written into the normalised image.
ERASE_MEAN_VALUES = np.array([0.4914, 0.4822, 0.4465], np.float32)


def normalize(images: jax.Array) -> jax.Array:
    """uint8 (or [0,255] float) NHWC -> float32 normalised with ImageNet mean/std."""
    x = images.astype(jnp.float32) / 255.0
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def random_flip(rng: jax.Array, img: jax.Array, prob: float = 0.5) -> jax.Array:
    """Mirrors one HxWxC image left-right with probability ``prob``."""
    return jnp.where(jax.random.uniform(rng) < prob, img[:, ::-1], img)


def pad_crop(rng: jax.Array, img: jax.Array, pad: int) -> jax.Array:
    """Zero-pads by ``pad`` pixels on each side, then crops back to HxW at random."""
    if pad <= 0:
        return img
    h, w = img.shape[:2]
    padded = jnp.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    dy, dx = jax.random.randint(rng, (2,), 0, 2 * pad + 1)
    return jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, img.shape[2]))


def translate(rng: jax.Array, img: jax.Array, fraction: float) -> jax.Array:
    """Shifts by a uniform integer offset of up to ``fraction`` x H rows and x W columns
    (IDLA, Ahmed et al. Sec. 6.1: [-0.05H, 0.05H] x [-0.05W, 0.05W]); zeros fill in."""
    h, w = img.shape[0], img.shape[1]
    py, px = int(round(fraction * h)), int(round(fraction * w))
    if py == 0 and px == 0:
        return img
    padded = jnp.pad(img, ((py, py), (px, px), (0, 0)))
    ky, kx = jax.random.split(rng)
    dy = jax.random.randint(ky, (), 0, 2 * py + 1)
    dx = jax.random.randint(kx, (), 0, 2 * px + 1)
    return jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, img.shape[2]))


def random_erasing(
    rng: jax.Array,
    img: jax.Array,
    prob: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    min_aspect: float = 0.3,
    fill: jax.Array | None = None,
    tries: int = 100,
    log_aspect: bool = False,
) -> jax.Array:
    """Random Erasing (Zhong et al. 2020) on one normalised HxWxC image.

    Draws up to ``tries`` rectangles of area in ``area`` x H*W and aspect ratio in
    [min_aspect, 1/min_aspect] (uniform, as Zhong et al.; log-uniform with
    ``log_aspect``, as torchvision); the first that fits is filled with ``fill``
    (default 0, i.e. the mean pixel after normalisation), at a corner drawn uniformly
    over every position where it fits (both ends included, as ``random.randint``).
    """
    h, w = img.shape[:2]
    k_apply, k_area, k_aspect, k_y, k_x = jax.random.split(rng, 5)
    s = jax.random.uniform(k_area, (tries,), minval=area[0], maxval=area[1]) * h * w
    if log_aspect:
        r = jnp.exp(jax.random.uniform(
            k_aspect, (tries,), minval=jnp.log(min_aspect), maxval=-jnp.log(min_aspect)))
    else:
        r = jax.random.uniform(k_aspect, (tries,), minval=min_aspect, maxval=1.0 / min_aspect)
    eh = jnp.round(jnp.sqrt(s * r)).astype(jnp.int32)
    ew = jnp.round(jnp.sqrt(s / r)).astype(jnp.int32)
    fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
    first = jnp.argmax(fits)
    eh, ew, any_fit = eh[first], ew[first], fits.any()
    y0 = jax.random.randint(k_y, (), 0, jnp.maximum(h - eh + 1, 1))
    x0 = jax.random.randint(k_x, (), 0, jnp.maximum(w - ew + 1, 1))
    ys = jnp.arange(h)[:, None]
    xs = jnp.arange(w)[None, :]
    inside = (ys >= y0) & (ys < y0 + eh) & (xs >= x0) & (xs < x0 + ew)
    apply = (jax.random.uniform(k_apply) < prob) & any_fit
    fill = jnp.zeros((img.shape[2],), img.dtype) if fill is None else fill
    return jnp.where(apply & inside[..., None], fill, img)


def color_jitter(
    rng: jax.Array, img: jax.Array, brightness: float, contrast: float, saturation: float
) -> jax.Array:
    """Brightness, contrast and saturation jitter on one [0,1] HxWx3 image."""
    kb, kc, ks = jax.random.split(rng, 3)
    b = jax.random.uniform(kb, minval=1 - brightness, maxval=1 + brightness)
    c = jax.random.uniform(kc, minval=1 - contrast, maxval=1 + contrast)
    s = jax.random.uniform(ks, minval=1 - saturation, maxval=1 + saturation)
    img = img * b
    img = (img - img.mean()) * c + img.mean()
    grey = img @ jnp.array([0.299, 0.587, 0.114], img.dtype)
    img = (img - grey[..., None]) * s + grey[..., None]
    return jnp.clip(img, 0.0, 1.0)


def augment_batch(
    rng: jax.Array, images: jax.Array, cfg: Mapping[str, Any], clip_len: int = 1
) -> jax.Array:
    """Applies the configured augmentations to a uint8 NHWC batch; returns normalised float32.

    Args:
      rng: one key for the whole batch.
      images: uint8 [N,H,W,3].
      clip_len: consecutive pictures that are the frames of one clip and get the same
        draw (flip, crop, erased box, jitter), as TKP's spatial transforms, whose
        parameters are drawn once per clip (guxinqian/TKP utils/video_loader.py:95).
      cfg: config.aug as a dict: flip (prob), pad (pixels), translate (fraction),
        erasing (prob) with
        erasing_max_area / erasing_aspect / erasing_tries / erasing_fill, color_jitter
        (strength, 0 = off).
    """
    keys = jax.random.split(rng, images.shape[0] // clip_len)
    if clip_len > 1:
        keys = jnp.repeat(keys, clip_len, axis=0)

    def one(key: jax.Array, img: jax.Array) -> jax.Array:
        k_cj, k_flip, k_crop, k_erase = jax.random.split(key, 4)
        x = img.astype(jnp.float32) / 255.0
        if cfg["color_jitter"] > 0:
            cj = float(cfg["color_jitter"])
            x = color_jitter(k_cj, x, cj, cj, cj)
        if cfg["flip"] > 0:
            x = random_flip(k_flip, x, float(cfg["flip"]))
        # Pad with black before normalising, as torchvision's Pad(10) on the PIL image.
        x = pad_crop(k_crop, x, int(cfg["pad"]))
        if cfg.get("translate", 0.0) > 0:
            x = translate(jax.random.fold_in(k_crop, 1), x, float(cfg["translate"]))
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
        if cfg["erasing"] > 0:
            fill = {"mean_values": ERASE_MEAN_VALUES, "imagenet_mean_values": IMAGENET_MEAN,
                    "pixel_mean": None}[cfg["erasing_fill"]]
            x = random_erasing(
                k_erase, x, float(cfg["erasing"]), (0.02, float(cfg["erasing_max_area"])),
                0.3, fill, int(cfg["erasing_tries"]), cfg["erasing_aspect"] == "log_uniform",
            )
        return x

    return jax.vmap(one)(keys, images)
