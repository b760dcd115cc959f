"""Max pooling with a gradient written as strided slices (fast on XLA's CPU backend).

``flax.linen.max_pool`` differentiates ``lax.reduce_window`` through XLA's
select-and-scatter, which the CPU backend runs as a variadic reduce-window over value and
index, iota tensors of the padded input's size and a scatter: about 70 ms of a 370 ms
ResNet-18/w32 step at 128x64, batch 64 (``benchmarks/train_step_vs_torch.py``; the
profile is in the README's benchmark section). Here the forward is the maximum of the
k x k strided slices of the padded input and the backward sends each output's gradient
to the first window position holding the maximum (row-major order, as PyTorch's
``max_pool2d``), placed back with interior padding; XLA fuses both into elementwise loops.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax


def _taps(xp: jax.Array, window: int, stride: int, out_hw: tuple[int, int]) -> list:
    """The window's k x k strided views of the padded map, row-major."""
    ho, wo = out_hw
    n, _, _, c = xp.shape
    views = []
    for a in range(window):
        for b in range(window):
            views.append(lax.slice(
                xp, (0, a, b, 0), (n, a + stride * (ho - 1) + 1, b + stride * (wo - 1) + 1, c),
                (1, stride, stride, 1)))
    return views


def _out_hw(h: int, w: int, window: int, stride: int, pad: int) -> tuple[int, int]:
    return (h + 2 * pad - window) // stride + 1, (w + 2 * pad - window) // stride + 1


def _pad(x: jax.Array, pad: int) -> jax.Array:
    low = jnp.array(-jnp.inf, x.dtype)
    return lax.pad(x, low, ((0, 0, 0), (pad, pad, 0), (pad, pad, 0), (0, 0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool(x: jax.Array, window: int = 3, stride: int = 2, pad: int = 1) -> jax.Array:
    """Max pooling of an NHWC map over ``window`` x ``window`` windows.

    Args:
      x: [N, H, W, C] floating-point map.
      window: window side.
      stride: step between windows, both axes.
      pad: positions of -inf added on each side, both axes.

    Returns:
      [N, (H + 2 pad - window) // stride + 1, (W + ...) // stride + 1, C], equal to
      ``flax.linen.max_pool(x, (window, window), (stride, stride), ((pad, pad),) * 2)``.
    """
    out_hw = _out_hw(x.shape[1], x.shape[2], window, stride, pad)
    return functools.reduce(jnp.maximum, _taps(_pad(x, pad), window, stride, out_hw))


def _fwd(x: jax.Array, window: int, stride: int, pad: int) -> tuple:
    y = max_pool(x, window, stride, pad)
    return y, (x, y)


def _bwd(window: int, stride: int, pad: int, res: tuple, g: jax.Array) -> tuple:
    x, y = res
    n, h, w, c = x.shape
    ho, wo = y.shape[1:3]
    xp = _pad(x, pad)
    hp, wp = xp.shape[1:3]
    zero = jnp.zeros((), g.dtype)
    claimed = jnp.zeros(y.shape, bool)
    grad = jnp.zeros(xp.shape, g.dtype)
    for i, view in enumerate(_taps(xp, window, stride, (ho, wo))):
        a, b = divmod(i, window)
        first = (view == y) & ~claimed  # ties: the first position in row-major order
        claimed = claimed | first
        contrib = jnp.where(first, g, zero)
        grad = grad + lax.pad(contrib, zero, (
            (0, 0, 0),
            (a, hp - a - stride * (ho - 1) - 1, stride - 1),
            (b, wp - b - stride * (wo - 1) - 1, stride - 1),
            (0, 0, 0)))
    return (grad[:, pad:pad + h, pad:pad + w],)


max_pool.defvjp(_fwd, _bwd)
