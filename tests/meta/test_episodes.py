"""Episodes: domain splits as index arrays, domain-major gathers, domain-balanced batches."""

import jax
import jax.numpy as jnp
import numpy as np

from reid_jax.meta import episodes, inner


def test_split_domains_is_a_partition_and_varies():
    seen = set()
    for i in range(20):
        tr, te = episodes.split_domains(jax.random.key(i), 5, 2)
        assert tr.shape == (3,) and te.shape == (2,)
        assert sorted(np.concatenate([tr, te]).tolist()) == [0, 1, 2, 3, 4]
        seen.add(tuple(te.tolist()))
    assert len(seen) > 3


def test_split_under_jit_needs_no_recompilation():
    traces = []

    @jax.jit
    def f(key, x):
        traces.append(1)
        tr, te = episodes.split_domains(key, 3, 1)
        return episodes.take_domains(x, tr, 3), episodes.take_domains(x, te, 3)

    x = jnp.arange(12)  # 3 domains x 4 rows
    for i in range(5):
        a, b = f(jax.random.key(i), x)
        assert a.shape == (8,) and b.shape == (4,)
        np.testing.assert_array_equal(np.sort(np.concatenate([a, b])), np.arange(12))
        assert len(set(np.asarray(b) // 4)) == 1
    assert len(traces) == 1


def test_domain_pk_batches_are_domain_major():
    rng = np.random.default_rng(0)
    domains = np.repeat([0, 1, 2], 40)
    labels = np.concatenate([np.repeat(np.arange(10) + 10 * d, 4) for d in range(3)])
    cams = rng.integers(0, 3, size=120)
    rows = episodes.domain_pk_batches(labels, cams, domains, 2, 2, 0, 0, 5)
    assert rows.shape == (5, 12)
    np.testing.assert_array_equal(domains[rows].reshape(5, 3, 4), np.repeat([0, 1, 2], 4)[None].reshape(1, 3, 4).repeat(5, 0))
    again = episodes.domain_pk_batches(labels, cams, domains, 2, 2, 0, 0, 5)
    np.testing.assert_array_equal(rows, again)


def test_partition_merge_roundtrip():
    tree = {"a": {"gate": 1.0, "w": 2.0}, "b": {"gate": 3.0}}
    sel, rest = inner.partition(tree, lambda p: p[-1] == "gate")
    assert sel == {"a": {"gate": 1.0}, "b": {"gate": 3.0}} and rest == {"a": {"w": 2.0}}
    assert inner.merge(rest, sel) == tree


def test_cyclic_lr_stays_in_range():
    lrs = np.array([inner.cyclic_lr(s, 0.001, 0.1, 10.0) for s in range(25)])
    assert lrs.max() <= 0.1 + 1e-7 and lrs.min() >= 0.001 - 1e-7
    np.testing.assert_allclose(lrs[0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(lrs[5], 0.001, rtol=1e-5)
