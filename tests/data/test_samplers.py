"""P x K sampler and padded eval batches."""

import numpy as np
import pytest

from reid_jax import errors
from reid_jax.data import samplers


def _toy(num_ids=10, per_id=6, num_cams=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_ids), per_id)
    cams = rng.integers(0, num_cams, size=labels.size)
    return labels, cams


def test_each_batch_holds_p_identities_with_k_instances():
    labels, cams = _toy()
    b = samplers.pk_batches(labels, cams, p=4, k=3, seed=1, epoch=0)
    assert b.shape == (samplers.steps_per_epoch(labels, 4, 3), 12)
    for row in b:
        ids = labels[row].reshape(4, 3)
        assert (ids == ids[:, :1]).all()  # K consecutive instances of one identity
        assert len(set(ids[:, 0])) == 4  # P distinct identities


def test_deterministic_per_seed_and_epoch():
    labels, cams = _toy()
    a = samplers.pk_batches(labels, cams, 4, 3, seed=5, epoch=2)
    b = samplers.pk_batches(labels, cams, 4, 3, seed=5, epoch=2)
    c = samplers.pk_batches(labels, cams, 4, 3, seed=5, epoch=3)
    d = samplers.pk_batches(labels, cams, 4, 3, seed=6, epoch=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_prefers_different_cameras():
    # Identity 0 has two images in each of three cameras: K=3 must take one per camera.
    labels = np.array([0] * 6 + [1] * 6)
    cams = np.array([0, 0, 1, 1, 2, 2] * 2)
    for epoch in range(5):
        for row in samplers.pk_batches(labels, cams, p=2, k=3, seed=0, epoch=epoch):
            for chunk in row.reshape(2, 3):
                assert sorted(cams[chunk]) == [0, 1, 2]


def test_small_identity_sampled_with_replacement_and_ignores_unlabelled():
    labels = np.array([0, 0, 0, 0, 1, -1, -1])
    cams = np.zeros(7, int)
    b = samplers.pk_batches(labels, cams, p=2, k=3, seed=0, epoch=0, num_batches=4)
    assert (labels[b] >= 0).all()
    assert ((labels[b] == 1).sum(axis=1) == 3).all()  # id 1 has one image, drawn 3 times


def test_every_image_used_about_once_per_epoch():
    labels, cams = _toy(num_ids=12, per_id=8)
    b = samplers.pk_batches(labels, cams, p=4, k=4, seed=3, epoch=0)
    counts = np.bincount(b.ravel(), minlength=labels.size)
    assert counts.max() <= 2 and (counts > 0).mean() > 0.9


@pytest.mark.parametrize(
    "p,k,devices,match",
    [(20, 4, 1, "only 10 identities"), (4, 1, 1, "K >= 2"), (3, 3, 2, "not divisible")],
)
def test_impossible_pk_is_a_clear_error(p, k, devices, match):
    labels, _ = _toy()
    with pytest.raises(errors.ReidError, match=match):
        samplers.check_pk(labels, p, k, devices)


def test_eval_batches_pad_and_mask():
    idx, mask = samplers.eval_batches(10, 4)
    assert idx.shape == mask.shape == (3, 4)
    np.testing.assert_array_equal(idx[mask], np.arange(10))
    assert mask.sum() == 10 and not mask[-1, 2:].any()


def test_unlabeled_batches_use_every_pool_index_once_per_pass():
    pool = np.arange(100, 130)  # 30 unlabeled examples
    out = samplers.unlabeled_batches(pool, num_batches=10, per_batch=6, seed=3, epoch=1)
    assert out.shape == (10, 6)
    flat = out.ravel()  # 60 draws = two passes over the pool
    np.testing.assert_array_equal(np.sort(flat[:30]), pool)
    np.testing.assert_array_equal(np.sort(flat[30:]), pool)
    np.testing.assert_array_equal(
        out, samplers.unlabeled_batches(pool, num_batches=10, per_batch=6, seed=3, epoch=1))
    assert not np.array_equal(
        out, samplers.unlabeled_batches(pool, num_batches=10, per_batch=6, seed=3, epoch=2))
    assert samplers.unlabeled_batches(pool, 4, 0, 0, 0).shape == (4, 0)
    with pytest.raises(errors.ReidError, match="unlabeled"):
        samplers.unlabeled_batches(np.array([], np.int64), 4, 2, 0, 0)


def test_check_pk_counts_the_unlabeled_pictures_of_a_batch():
    labels, _ = _toy()
    samplers.check_pk(labels, 4, 2, 8)  # 8 divides 8
    with pytest.raises(errors.ReidError, match=r"P x K \+ 4 unlabeled = 12 .*unlabeled_per_batch"):
        samplers.check_pk(labels, 4, 2, 8, extra_per_batch=4)
    samplers.check_pk(labels, 4, 2, 8, extra_per_batch=8)  # 16 on 8 devices


def _groups(rows, k):
    """The K-groups of the stream (K consecutive indices)."""
    flat = np.concatenate(rows)
    return flat.reshape(-1, k)


def test_cluster_uniform_visits_every_identity_once_per_pass_with_cross_camera_positives():
    labels = np.repeat(np.arange(12), 8)
    cams = np.arange(labels.size) % 3  # every identity in every camera
    labels[:3] = -1  # outliers are never drawn
    p, k = 4, 4
    rows = samplers.cluster_uniform_batches(labels, cams, p, k, seed=0, epoch=0, num_batches=3)
    assert rows.shape == (3, p * k)
    groups = _groups(rows, k)  # 12 identities x K = 48 = 3 batches: exactly one pass
    ids = labels[groups]
    assert (ids == ids[:, :1]).all()  # a group is one identity
    assert sorted(ids[:, 0]) == list(range(12))  # each identity once in the pass
    for g in groups:  # an anchor, then K-1 from its other cameras
        assert (cams[g[1:]] != cams[g[0]]).all()
    np.testing.assert_array_equal(
        rows, samplers.cluster_uniform_batches(labels, cams, p, k, 0, 0, 3))  # (seed, epoch)


def test_cluster_uniform_falls_back_to_the_anchor_camera_and_keeps_singletons():
    labels = np.array([0, 0, 0, 1, 2, 2])
    cams = np.array([0, 0, 0, 1, 0, 1])
    rows = samplers.cluster_uniform_batches(labels, cams, 1, 3, seed=1, epoch=0, num_batches=8)
    stream = rows.ravel()
    # identity 1 has one picture: it emits the anchor alone; identity 0 has one camera.
    assert (labels[stream] == 1).sum() > 0
    firsts = [i for i in range(len(stream)) if labels[stream[i]] == 1]
    assert all(i + 1 == len(stream) or labels[stream[i + 1]] != 1 or stream[i + 1] == 3
               for i in firsts)


def test_proxy_sampler_takes_k_of_the_proxy_without_replacement_when_it_can():
    labels = np.repeat(np.arange(6), [5, 5, 4, 4, 2, 2])
    cams = np.zeros(labels.size, int)
    rows = samplers.cluster_uniform_batches(labels, cams, 2, 4, seed=0, epoch=1, num_batches=3,
                                            cross_camera=False)
    for g in _groups(rows, 4):
        lab = labels[g]
        assert (lab == lab[0]).all()
        if (labels == lab[0]).sum() >= 4:
            assert len(set(g)) == 4  # no repeats


def test_random_batches_are_passes_over_the_labelled_pictures():
    labels = np.array([0, 0, 1, 1, 2, 2, -1, 3, 3, 4])
    rows = samplers.random_batches(labels, 3, seed=0, epoch=0, num_batches=6)
    assert rows.shape == (6, 3) and (labels[rows] >= 0).all()
    first_pass = rows[:3].ravel()  # 9 labelled pictures: 3 full batches per pass
    assert len(set(first_pass)) == 9
