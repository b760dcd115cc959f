"""Pseudo labels for unsupervised re-ID: one clustering round over the training features.

The round of the clustering pipelines (Ge et al., "Self-paced Contrastive Learning with
Hybrid Memory for Domain Adaptive Object Re-ID" (SpCL), NeurIPS 2020; Dai et al.,
"Cluster Contrast for Unsupervised Person Re-Identification", ACCV 2022; Cho et al.,
"Part-based Pseudo Label Refinement for Unsupervised Person Re-identification" (PPLR),
CVPR 2022), run at the start of every epoch:

1. L2-normalised features of every training image (the caller extracts them);
2. k-reciprocal Jaccard distances (Zhong et al., CVPR 2017) with k1 = 30, k2 = 6
   (``compute_jaccard_distance(features, k1=30, k2=6)`` in the official code); here
   ``reid_jax.clustering.jaccard.jaccard_graph``: k-NN search in blocks (on the
   accelerator, or NumPy BLAS blocks when JAX runs on the CPU), sparse encodings, and
   a sparse graph of the pairs within eps only;
3. DBSCAN (Ester et al., KDD 1996; scikit-learn, ``metric='precomputed'``,
   ``min_samples=4``, ``eps=0.6`` in cluster contrast, ``0.5`` in PPLR on Market-1501)
   on the *sparse* Jaccard graph: every pair not stored is farther than eps, so the
   neighbourhoods are those of the dense matrix (scikit-learn treats a missing entry
   of a sparse precomputed graph as "not a neighbour"). Label -1 marks
   outliers; the trainers drop them from the epoch, as the references do.

Two other labelers are offered for ablations: k-means on the normalised features
(``kmeans``, a fixed number of clusters) and ``knn``: connected components of the graph
that links each image to its mutual (k-reciprocal) nearest neighbours among the first
``knn_k``, with components smaller than ``min_samples`` marked as outliers.

Cluster-quality diagnostics (NMI, purity, ARI against the hidden identities) are for
logging only; nothing here reads labels to build the clusters.
"""

from __future__ import annotations

import dataclasses
import time

import ml_collections
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import sklearn.cluster
import sklearn.metrics
from numpy.typing import ArrayLike

from reid_jax import errors, vectors
from reid_jax.clustering import jaccard
from reid_jax.evaluation import kreciprocal, neighbors

METHODS = ("dbscan", "kmeans", "knn")
# Not a labeler: the hidden identities themselves, to measure what a method reaches with
# perfect pseudo labels (the upper bound its clustering limits; see ``oracle``).
ORACLE = "oracle"


@dataclasses.dataclass
class Clustering:
    """The outcome of one pseudo-label round.

    Attributes:
      labels: [N] int32 pseudo labels 0..num_clusters-1, -1 for outliers.
      num_clusters: number of clusters.
      seconds: wall time of each stage ('jaccard', 'cluster').
    """

    labels: np.ndarray
    num_clusters: int
    seconds: dict[str, float]

    @property
    def num_outliers(self) -> int:
        """Images left out of every cluster."""
        return int(np.sum(self.labels < 0))


def jaccard_distances(
    features: ArrayLike, k1: int = 30, k2: int = 6, max_distance: float = 1.0
) -> scipy.sparse.csr_matrix:
    """Sparse k-reciprocal Jaccard distances among the rows of ``features``.

    Args:
      features: [N, D] features (L2-normalised here).
      k1: neighbours searched per image, itself included (30 in SpCL/cluster contrast).
      k2: local query expansion size (6).
      max_distance: only pairs within this distance are stored (DBSCAN's eps).

    Returns:
      [N, N] float32 CSR; every pair not stored has distance > max_distance (1 when
      the encodings share nothing); the diagonal is stored.
    """
    return jaccard.jaccard_graph(features, k1=k1, k2=k2, max_distance=max_distance)


def restrict_graph(dist: scipy.sparse.csr_matrix, eps: float) -> scipy.sparse.csr_matrix:
    """Keeps only stored entries <= eps (explicit zeros stay explicit).

    DBSCAN with radius ``eps`` never looks at the others, and dropping them shrinks the
    graph scikit-learn sorts row by row.
    """
    dist = dist.tocsr()
    keep = dist.data <= eps
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    indptr = kept_before[dist.indptr].astype(dist.indptr.dtype)
    return scipy.sparse.csr_matrix(
        (dist.data[keep], dist.indices[keep], indptr), shape=dist.shape
    )


def dbscan(dist: scipy.sparse.spmatrix | np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN on a precomputed (sparse or dense) distance matrix.

    Args:
      dist: [N, N] distances; for a sparse matrix, missing entries count as > eps.
      eps: neighbourhood radius.
      min_samples: neighbours (the point itself included) that make a core point.

    Returns:
      [N] int32 labels, -1 for outliers.
    """
    if scipy.sparse.issparse(dist):
        dist = restrict_graph(dist.tocsr(), eps)
    model = sklearn.cluster.DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed")
    return model.fit_predict(dist).astype(np.int32)


def kmeans(features: ArrayLike, num_clusters: int, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """k-means labels of the features as given (no outliers).

    MMT clusters the mean of its two teachers' L2-normalised features without
    normalising it again (yxgeee/MMT ``mmt_train_kmeans.py``), with scikit-learn's KMeans
    at its defaults of the time (``n_init=10``).

    Args:
      features: [N, D] features.
      num_clusters: k.
      seed: k-means++ seed.
      n_init: restarts; the best inertia wins.

    Returns:
      [N] int32 labels in 0..num_clusters-1.
    """
    feats = np.asarray(features, np.float32)
    model = sklearn.cluster.KMeans(n_clusters=num_clusters, n_init=n_init, random_state=seed)
    return model.fit_predict(feats).astype(np.int32)


def knn_components(features: ArrayLike, k: int, min_samples: int) -> np.ndarray:
    """Connected components of the mutual k-nearest-neighbour graph.

    An edge joins i and j when each is among the other's first ``k`` neighbours (the
    k-reciprocal relation of Zhong et al. 2017, without the expansion).

    Args:
      features: [N, D] features (L2-normalised here).
      k: neighbour list length, the image itself included.
      min_samples: components smaller than this are outliers (-1).

    Returns:
      [N] int32 labels, -1 for outliers; clusters numbered by first member.
    """
    feats = np.asarray(vectors.l2_normalize(np.asarray(features, np.float32)))
    n = feats.shape[0]
    ranking = neighbors.knn_search(feats, k).indices
    mutual = kreciprocal.reciprocal_mask(ranking, ranking.shape[1])
    rows = np.repeat(np.arange(n), ranking.shape[1])[mutual.reshape(-1)]
    cols = ranking.reshape(-1)[mutual.reshape(-1)]
    graph = scipy.sparse.csr_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n, n))
    _, comp = scipy.sparse.csgraph.connected_components(graph, directed=False)
    return compact_labels(comp, min_samples)


def compact_labels(labels: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Renumbers labels 0..C-1 by first appearance; groups smaller than min_size -> -1."""
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, np.int32)
    valid = labels >= 0
    uniq, first, inverse, counts = np.unique(
        labels[valid], return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(uniq), np.int64)
    big = counts[order] >= min_size
    rank[order[big]] = np.arange(int(big.sum()))
    rank[order[~big]] = -1
    out[valid] = rank[inverse]
    return out


def pseudo_labels(features: ArrayLike, cfg: ml_collections.ConfigDict, seed: int = 0) -> Clustering:
    """One pseudo-label round as configured by ``config.cluster``.

    Args:
      features: [N, D] features of the training images.
      cfg: ``method`` ('dbscan', 'kmeans', 'knn'), ``k1``, ``k2``, ``eps``,
        ``min_samples``, ``num_clusters`` (k-means), ``knn_k`` (knn).
      seed: k-means seed (the trainers pass seed + round).

    Returns:
      The Clustering.
    """
    if cfg.method not in METHODS:
        raise errors.ReidError(
            f"unknown cluster.method {cfg.method!r}; choose one of {', '.join(METHODS)}."
        )
    n = np.shape(features)[0]
    seconds = {}
    t0 = time.time()
    if cfg.method == "dbscan":
        if n < cfg.k1:
            raise errors.ReidError(
                f"the Jaccard distance needs at least cluster.k1 = {cfg.k1} images, got {n}; "
                "lower --config.cluster.k1."
            )
        dist = jaccard_distances(features, cfg.k1, cfg.k2, max_distance=cfg.eps)
        seconds["jaccard"] = time.time() - t0
        t0 = time.time()
        labels = dbscan(dist, cfg.eps, cfg.min_samples)
    elif cfg.method == "kmeans":
        if not 0 < cfg.num_clusters <= n:
            raise errors.ReidError(
                f"cluster.num_clusters must be in 1..{n} for k-means, got {cfg.num_clusters}."
            )
        labels = kmeans(features, cfg.num_clusters, seed, cfg.kmeans_n_init)
    else:
        labels = knn_components(features, min(cfg.knn_k, n), cfg.min_samples)
    seconds["cluster"] = time.time() - t0
    labels = compact_labels(labels)
    return Clustering(labels, int(labels.max(initial=-1)) + 1, seconds)


def oracle(true_ids: np.ndarray) -> Clustering:
    """The hidden identities as pseudo labels (``cluster.method='oracle'``): a diagnostic
    run that is supervised, never a result of the unsupervised method."""
    labels = compact_labels(np.asarray(true_ids))
    return Clustering(labels, int(labels.max(initial=-1)) + 1, {"cluster": 0.0})


def _purity(labels: np.ndarray, groups: np.ndarray) -> float:
    """Fraction of images whose cluster's majority group is theirs."""
    table = scipy.sparse.coo_matrix(
        (np.ones(labels.size), (labels, np.unique(groups, return_inverse=True)[1]))
    ).tocsr()
    return float(table.max(axis=1).toarray().sum() / labels.size)


def camera_standardize(features: ArrayLike, cameras: np.ndarray) -> np.ndarray:
    """Per-camera standardisation of features, then L2 normalisation.

    Not part of the reference methods (off by default in the configs): subtracting
    each camera's mean feature and dividing by its standard deviation removes what
    all images of a camera share (background, lighting), so an untrained network's
    clusters follow cameras less (on synthetic_persons: camera purity 0.97 -> 0.74 at
    equal identity purity). Camera ids are metadata, not identity labels.

    Args:
      features: [N, D] features.
      cameras: [N] camera ids.

    Returns:
      [N, D] float32 standardised, L2-normalised features.
    """
    f = np.array(features, np.float32)
    cameras = np.asarray(cameras)
    for c in np.unique(cameras):
        m = cameras == c
        f[m] = (f[m] - f[m].mean(axis=0)) / (f[m].std(axis=0) + 1e-6)
    return vectors.l2_normalize_np(f)


def cluster_quality(
    labels: np.ndarray, identities: np.ndarray, cameras: np.ndarray | None = None
) -> dict[str, float]:
    """Diagnostics of pseudo labels against the hidden identities (logging only).

    Args:
      labels: [N] pseudo labels, -1 for outliers.
      identities: [N] true identities.
      cameras: optional [N] camera ids.

    Returns:
      'nmi' and 'ari' over the clustered images, 'purity' (fraction of clustered images
      whose cluster's majority identity is theirs), 'outlier_fraction', and with cameras
      'camera_purity' (the same for cameras: near 1 means clusters follow cameras, the
      camera bias that CAP addresses).
    """
    labels = np.asarray(labels)
    identities = np.asarray(identities)
    keep = labels >= 0
    out = {"outlier_fraction": float(1.0 - keep.mean()) if labels.size else 0.0}
    if keep.sum() == 0:
        return {**out, "nmi": 0.0, "ari": 0.0, "purity": 0.0}
    lab, ids = labels[keep], identities[keep]
    out["nmi"] = float(sklearn.metrics.normalized_mutual_info_score(ids, lab))
    out["ari"] = float(sklearn.metrics.adjusted_rand_score(ids, lab))
    out["purity"] = _purity(lab, ids)
    if cameras is not None:
        out["camera_purity"] = _purity(lab, np.asarray(cameras)[keep])
    return out


def centroids(features: ArrayLike, labels: np.ndarray, num_clusters: int) -> np.ndarray:
    """L2-normalised mean feature of each cluster (outliers ignored).

    Args:
      features: [N, ...] features (any trailing shape; normalised over the last axis).
      labels: [N] pseudo labels, -1 for outliers.
      num_clusters: C.

    Returns:
      [C, ...] float32 normalised centroids.
    """
    feats = np.asarray(features, np.float32)
    labels = np.asarray(labels)
    keep = np.flatnonzero(labels >= 0)
    onehot = scipy.sparse.csr_matrix(
        (np.ones(keep.size), (labels[keep], keep)), shape=(num_clusters, feats.shape[0])
    )
    sums = np.asarray(onehot @ feats.reshape(feats.shape[0], -1).astype(np.float64))
    counts = np.bincount(labels[keep], minlength=num_clusters)[:, None]
    means = (sums / np.maximum(counts, 1)).reshape((num_clusters, *feats.shape[1:]))
    return vectors.l2_normalize_np(means).astype(np.float32)
