"""Cluster memory updates against the reference's sequential per-sample loop."""

import jax
import numpy as np
import pytest

from reid_jax.clustering import memory


def _normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _reference_momentum(mem, feats, labels, m):
    mem = mem.copy()
    for f, y in zip(feats, labels):  # cluster contrast CM.backward, one sample at a time
        mem[y] = m * mem[y] + (1 - m) * f
        mem[y] /= np.linalg.norm(mem[y])
    return mem


def _reference_hard(mem, feats, labels, m):
    mem = mem.copy()
    groups = {}
    for f, y in zip(feats, labels):
        groups.setdefault(int(y), []).append(f)
    for y, fs in groups.items():  # CM_Hard.backward
        sims = [float(f @ mem[y]) for f in fs]
        hardest = fs[int(np.argmin(sims))]
        mem[y] = m * mem[y] + (1 - m) * hardest
        mem[y] /= np.linalg.norm(mem[y])
    return mem


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    mem = memory.init_memory(rng.normal(size=(5, 8)), capacity=7)
    feats = _normalize(rng.normal(size=(12, 8))).astype(np.float32)
    labels = np.array([0, 2, 2, 4, 0, 2, 1, 1, 4, 0, 2, 3], np.int32)  # repeats on purpose
    return mem, feats, labels


def test_init_memory_pads_and_normalises():
    mem = memory.init_memory(np.array([[3.0, 4.0]]), capacity=3)
    np.testing.assert_allclose(mem, [[0.6, 0.8], [0, 0], [0, 0]])
    with pytest.raises(ValueError):
        memory.init_memory(np.ones((4, 2)), capacity=3)


def test_momentum_update_matches_sequential_loop(problem):
    mem, feats, labels = problem
    got = jax.jit(memory.momentum_update, static_argnums=3)(mem, feats, labels, 0.1)
    want = _reference_momentum(mem.astype(np.float64), feats, labels, 0.1)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)
    # Rows of clusters absent from the batch, and the padding, are untouched.
    np.testing.assert_array_equal(np.asarray(got)[5:], 0)
    # Order matters: a scatter-mean of the batch would give something else.
    assert not np.allclose(
        np.asarray(memory.momentum_update(mem, feats[::-1], labels[::-1], 0.1)), want, atol=1e-4
    )


def test_hard_update_matches_reference(problem):
    mem, feats, labels = problem
    got = jax.jit(memory.hard_update, static_argnums=3)(mem, feats, labels, 0.1)
    want = _reference_hard(mem.astype(np.float64), feats, labels, 0.1)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)
