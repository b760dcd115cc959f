"""Norms, L2 normalisation and Euclidean distances of feature vectors: one home each.

Losses, memories, models (cosine classifiers), clustering and evaluation all normalise
features and compare them; they share these functions so that the same vectors give
the same numbers everywhere.

- ``safe_norm``: Euclidean norm with a finite gradient at 0 (``jnp.linalg.norm``'s is NaN
  there), so a zero feature does not poison a loss's gradient.
- ``l2_normalize``: rows (or any axis) scaled to unit length, in float32 or wider; rows
  of zeros stay zero (the norm is bounded below by 1e-12, as
  ``torch.nn.functional.normalize``). ``l2_normalize_np`` is the same on host arrays.
- ``sq_euclidean``: ``|a|^2 + |b|^2 - 2 a.b`` clamped at 0, the ``(-2 a) . b`` form (exact
  scaling by a power of two, and XLA fuses the additions into the matmul's output);
  evaluation asks for full float32 products (``Precision.HIGHEST``), losses leave the
  accelerator's default.
- ``euclidean``: the square root of it, with a finite gradient at 0 (losses).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

NORM_EPS = 1e-12  # lower bound on a norm (torch.nn.functional.normalize's eps)
DIST_EPS = 1e-12  # lower bound on a squared distance under a square root


def safe_norm(x: jax.Array, axis: int = -1, keepdims: bool = False) -> jax.Array:
    """Euclidean norm along ``axis``, at least ``NORM_EPS``, with a finite gradient at 0."""
    return jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=keepdims), NORM_EPS**2))


def l2_normalize(x: ArrayLike, axis: int = -1) -> jax.Array:
    """``x`` scaled to unit L2 norm along ``axis`` (float32 or wider; zeros stay zero)."""
    x = jnp.asarray(x)
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return x / safe_norm(x, axis=axis, keepdims=True)


def l2_normalize_np(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """``l2_normalize`` of a host array, on the host (float32 or wider)."""
    x = np.asarray(x)
    x = x.astype(np.promote_types(x.dtype, np.float32))
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), NORM_EPS)


def sq_euclidean(
    a: jax.Array,
    b: jax.Array,
    a_sqnorm: jax.Array | None = None,
    b_sqnorm: jax.Array | None = None,
    precision: jax.lax.Precision | None = jax.lax.Precision.HIGHEST,
) -> jax.Array:
    """Squared Euclidean distances between the rows of ``a`` and ``b``.

    Args:
      a: [m, d].
      b: [n, d].
      a_sqnorm: optional precomputed [m] squared norms of ``a``.
      b_sqnorm: optional precomputed [n] squared norms of ``b``.
      precision: matmul precision (None: the device's default).

    Returns:
      [m, n] distances, clamped at 0 (cancellation can leave -1e-7 for equal rows).
    """
    if a_sqnorm is None:
        a_sqnorm = jnp.sum(a * a, axis=1)
    if b_sqnorm is None:
        b_sqnorm = jnp.sum(b * b, axis=1)
    dots = jnp.matmul(a * -2.0, b.T, precision=precision)
    return jnp.maximum(a_sqnorm[:, None] + b_sqnorm[None, :] + dots, 0.0)


def euclidean(x: jax.Array, y: jax.Array) -> jax.Array:
    """[N, M] Euclidean distances (float32 or wider) with a finite gradient at 0 (losses)."""
    dtype = jnp.promote_types(jnp.result_type(x, y), jnp.float32)
    d2 = sq_euclidean(jnp.asarray(x, dtype), jnp.asarray(y, dtype), precision=None)
    return jnp.sqrt(jnp.maximum(d2, DIST_EPS))
