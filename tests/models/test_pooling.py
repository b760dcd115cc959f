"""Max pooling with the strided-slice gradient (reid_jax/models/pooling.py)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax.models import pooling


def _numpy_grad(x: np.ndarray, g: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """PyTorch's rule, written out: each output's gradient goes to the first maximum of
    its window in row-major order (padding never wins)."""
    n, h, w, c = x.shape
    out = np.zeros_like(x)
    for b in range(n):
        for ch in range(c):
            for i in range(g.shape[1]):
                for j in range(g.shape[2]):
                    best, arg = -np.inf, None
                    for a in range(k):
                        for e in range(k):
                            y, z = i * s - p + a, j * s - p + e
                            if 0 <= y < h and 0 <= z < w and x[b, y, z, ch] > best:
                                best, arg = x[b, y, z, ch], (y, z)
                    out[b, arg[0], arg[1], ch] += g[b, i, j, ch]
    return out


@pytest.mark.parametrize("shape,k,s,p", [((2, 9, 7, 3), 3, 2, 1), ((1, 8, 6, 2), 3, 2, 1),
                                         ((1, 7, 7, 2), 2, 2, 0), ((1, 6, 5, 1), 3, 1, 1)])
def test_forward_and_gradient_match_references(shape, k, s, p):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    x[..., 0] = np.maximum(x[..., 0], 0.0)  # ReLU zeros: many ties inside a window
    x[0, :2, :2, -1] = 1.5  # a tie of a positive maximum
    y = pooling.max_pool(jnp.asarray(x), k, s, p)
    ref = nn.max_pool(jnp.asarray(x), (k, k), (s, s), ((p, p), (p, p)))
    np.testing.assert_array_equal(np.asarray(y), np.asarray(ref))
    g = rng.normal(size=y.shape).astype(np.float32)
    grad = jax.grad(lambda v: jnp.sum(pooling.max_pool(v, k, s, p) * g))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(grad), _numpy_grad(x, g, k, s, p), rtol=1e-6,
                               atol=1e-6)


def test_jits_and_keeps_bfloat16():
    x = jax.random.normal(jax.random.key(0), (2, 8, 4, 3), jnp.bfloat16)
    f = jax.jit(jax.value_and_grad(lambda v: jnp.sum(pooling.max_pool(v, 3, 2, 1))))
    val, grad = f(x)
    assert grad.dtype == jnp.bfloat16 and grad.shape == x.shape
    assert float(val) == pytest.approx(float(jnp.sum(nn.max_pool(
        x, (3, 3), (2, 2), ((1, 1), (1, 1))).astype(jnp.float32))), rel=1e-2)
