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


def _torch_cyclic_lr(last_epoch, base, top, up, down):
    """PyTorch CyclicLR 'triangular' get_lr(), written from its documented formula."""
    total = up + down
    cycle = np.floor(1 + last_epoch / total)
    x = 1.0 + last_epoch / total - cycle
    ratio = up / total
    scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    return base + (top - base) * scale


def test_triangular_lr_is_cycliclr_starting_low():
    # MetaBIN: period int(iters_per_epoch / 0.2) (5 epochs), half up, from 0.001 to 0.1.
    period = 37
    got = np.array([float(inner.triangular_lr(n, 0.001, 0.1, period)) for n in range(120)])
    want = [_torch_cyclic_lr(n, 0.001, 0.1, 18, 19) for n in range(120)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert got[0] == np.float32(0.001) and abs(got[18] - 0.1) < 1e-6  # low first, peak at 18
    np.testing.assert_allclose(got[37], 0.001, atol=1e-6)  # one cycle later
    assert (got >= 0.001 - 1e-7).all() and (got <= 0.1 + 1e-7).all()
