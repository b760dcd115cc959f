"""Pseudo-label methods, relabelling, centroids and cluster diagnostics."""

import ml_collections
import numpy as np
import pytest
import sklearn.metrics

from reid_jax import errors
from reid_jax.clustering import pseudo_labels


def _blobs(n=120, d=16, centers=5, seed=0, spread=0.2):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    ids = rng.integers(0, centers, n)
    return (c[ids] + spread * rng.normal(size=(n, d))).astype(np.float32), ids


def _cfg(**kw):
    c = ml_collections.ConfigDict(dict(
        method="dbscan", k1=15, k2=4, eps=0.6, min_samples=4, num_clusters=5, knn_k=8,
        kmeans_n_init=10,
    ))
    c.update(kw)
    return c


@pytest.mark.parametrize("method", ["dbscan", "kmeans", "knn"])
def test_each_method_recovers_well_separated_blobs(method):
    x, ids = _blobs()
    res = pseudo_labels.pseudo_labels(x, _cfg(method=method), seed=0)
    assert res.labels.dtype == np.int32 and res.labels.shape == ids.shape
    assert res.num_clusters == res.labels.max() + 1
    keep = res.labels >= 0
    assert keep.mean() > 0.9
    assert sklearn.metrics.adjusted_rand_score(ids[keep], res.labels[keep]) > 0.95


def test_bad_settings_are_reported():
    x, _ = _blobs(n=20)
    with pytest.raises(errors.ReidError, match="cluster.method"):
        pseudo_labels.pseudo_labels(x, _cfg(method="infomap"))
    with pytest.raises(errors.ReidError, match="cluster.k1"):
        pseudo_labels.pseudo_labels(x, _cfg(k1=30))
    with pytest.raises(errors.ReidError, match="num_clusters"):
        pseudo_labels.pseudo_labels(x, _cfg(method="kmeans", num_clusters=0))


def test_compact_labels_renumbers_by_first_appearance_and_drops_small_groups():
    got = pseudo_labels.compact_labels(np.array([7, 7, -1, 3, 9, 3, 7]), min_size=2)
    np.testing.assert_array_equal(got, [0, 0, -1, 1, -1, 1, 0])


def test_centroids_are_normalised_means_without_outliers():
    f = np.array([[1.0, 0], [3, 0], [0, 2], [5, 5]], np.float32)
    labels = np.array([0, 0, 1, -1])
    np.testing.assert_allclose(pseudo_labels.centroids(f, labels, 2), [[1, 0], [0, 1]])
    parts = np.stack([f, -f], axis=1)  # [N, P, D]
    got = pseudo_labels.centroids(parts, labels, 2)
    assert got.shape == (2, 2, 2)
    np.testing.assert_allclose(got[:, 1], [[-1, 0], [0, -1]])


def test_cluster_quality_by_hand():
    labels = np.array([0, 0, 0, 1, 1, -1])
    ids = np.array([5, 5, 6, 7, 7, 5])
    q = pseudo_labels.cluster_quality(labels, ids)
    assert q["purity"] == pytest.approx(4 / 5)
    assert q["outlier_fraction"] == pytest.approx(1 / 6)
    assert q["nmi"] == pytest.approx(
        sklearn.metrics.normalized_mutual_info_score(ids[:5], labels[:5])
    )


def test_camera_standardize_removes_camera_offsets():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(6), 4)
    cams = np.tile([0, 1], 12)
    base = rng.normal(size=(6, 8))[ids] + 0.1 * rng.normal(size=(24, 8))
    shifted = base + 5.0 * np.where(cams[:, None] == 0, 1.0, -1.0)  # a strong camera offset
    f = pseudo_labels.camera_standardize(shifted, cams)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    sim = f @ f.T
    same_id = ids[:, None] == ids[None, :]
    assert sim[same_id & (cams[:, None] != cams[None, :])].mean() > sim[~same_id].mean() + 0.3
