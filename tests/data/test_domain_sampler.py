"""Domain-balanced P x K sampler (samplers.domain_pk_batches)."""

import numpy as np
import pytest

from reid_jax import errors
from reid_jax.data import samplers


def _multi(ids_per_domain=(6, 4, 5), per_id=4, num_cams=3, seed=0):
    """Three domains whose labels restart at 0 (as before relabelling), interleaved."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.repeat(np.arange(n), per_id) for n in ids_per_domain])
    domains = np.concatenate([np.full(n * per_id, d) for d, n in enumerate(ids_per_domain)])
    cams = rng.integers(0, num_cams, size=labels.size)
    order = rng.permutation(labels.size)  # domains need not be contiguous
    return labels[order], cams[order], domains[order]


def _check_block(block, labels, domains, domain, p, k):
    assert (domains[block] == domain).all()
    ids = labels[block].reshape(p, k)
    assert (ids == ids[:, :1]).all() and len(set(ids[:, 0])) == p


def test_per_domain_rows_hold_pk_of_every_domain_in_order():
    labels, cams, domains = _multi()
    b = samplers.domain_pk_batches(labels, cams, domains, p=3, k=2, seed=1, epoch=0)
    largest = max(samplers.steps_per_epoch(labels[domains == d], 3, 2) for d in range(3))
    assert b.shape == (largest, 3 * 3 * 2)
    for row in b:
        for d, block in enumerate(row.reshape(3, 6)):
            _check_block(block, labels, domains, d, 3, 2)


def test_alternate_takes_domains_in_turn():
    labels, cams, domains = _multi()
    b = samplers.domain_pk_batches(labels, cams, domains, 3, 2, seed=1, epoch=0, mode="alternate",
                                   num_batches=7)
    assert b.shape == (7, 6)
    for i, row in enumerate(b):
        _check_block(row, labels, domains, i % 3, 3, 2)


def test_reuses_pk_batches_per_domain():
    labels, cams, domains = _multi()
    b = samplers.domain_pk_batches(labels, cams, domains, 2, 2, seed=4, epoch=3, num_batches=5)
    idx = np.flatnonzero(domains == 1)
    seed1 = int(np.random.SeedSequence([4, 1]).generate_state(1)[0])
    ref = idx[samplers.pk_batches(labels[idx], cams[idx], 2, 2, seed1, 3, num_batches=5)]
    np.testing.assert_array_equal(b[:, 4:8], ref)
    # 'alternate' draws domain 1's batches from the same stream.
    alt = samplers.domain_pk_batches(labels, cams, domains, 2, 2, seed=4, epoch=3,
                                     mode="alternate", num_batches=15)
    np.testing.assert_array_equal(alt[1::3], ref)


@pytest.mark.parametrize("mode", ["per_domain", "alternate"])
def test_deterministic_per_seed_and_epoch(mode):
    labels, cams, domains = _multi()
    draw = lambda seed, epoch: samplers.domain_pk_batches(  # noqa: E731
        labels, cams, domains, 2, 2, seed=seed, epoch=epoch, mode=mode)
    np.testing.assert_array_equal(draw(5, 2), draw(5, 2))
    assert not np.array_equal(draw(5, 2), draw(5, 3))
    assert not np.array_equal(draw(5, 2), draw(6, 2))


def test_unlabelled_examples_and_empty_domains_are_skipped():
    labels, cams, domains = _multi(ids_per_domain=(3, 3))
    labels = np.concatenate([labels, [-1, -1, -1]])
    cams = np.concatenate([cams, [0, 1, 2]])
    domains = np.concatenate([domains, [0, 2, 2]])  # domain 2 has no labelled example
    b = samplers.domain_pk_batches(labels, cams, domains, 2, 2, seed=0, epoch=0, num_batches=4)
    assert b.shape == (4, 8) and (labels[b] >= 0).all()
    assert (domains[b[:, :4]] == 0).all() and (domains[b[:, 4:]] == 1).all()


def test_errors_name_the_problem():
    labels, cams, domains = _multi(ids_per_domain=(6, 2))
    with pytest.raises(errors.ReidError, match="domain 1 has only 2 identities"):
        samplers.domain_pk_batches(labels, cams, domains, 3, 2, seed=0, epoch=0)
    with pytest.raises(errors.ReidError, match="unknown domain sampling mode"):
        samplers.domain_pk_batches(labels, cams, domains, 2, 2, 0, 0, mode="mixed")
    with pytest.raises(errors.ReidError, match="same length"):
        samplers.domain_pk_batches(labels, cams, domains[:-1], 2, 2, 0, 0)
