"""One pseudo-label round (k-NN + k-reciprocal Jaccard + DBSCAN) at Market / MSMT17 size.

Times ``reid_jax.clustering.pseudo_labels`` (blocked k-NN search, on a CPU NumPy BLAS
blocks with threshold-filtered merges; sparse encodings; upper-triangle min-sums into
a sparse Jaccard graph of the pairs within eps; DBSCAN on that graph) on L2-normalised
2048-d features, and beside it a dense NumPy reference at Market-1501 size: a
transcription of the dense algorithm of SpCL / cluster contrast
``compute_jaccard_distance`` (N x N distance, V, query-expanded V and Jaccard
matrices, the per-row inverted-index loop) followed by DBSCAN on the dense matrix.
Each measurement runs in its own subprocess so that its peak resident memory
(``ru_maxrss``) is its own; CPU seconds and the 1-minute load average at its start are
recorded too (the timings are wall clock, and other jobs may share the machine).

  python benchmarks/cluster_bench.py                    # Market size, ours + reference
  python benchmarks/cluster_bench.py --sizes 12936 32621 --reference_max 12936 \
      --features random clustered

``random``: i.i.d. Gaussian features, almost no structure (DBSCAN finds no cluster);
the timings are those of the algorithm's data movement. ``clustered``: 751 identity
centres (Market-1501's training identities) plus Gaussian noise of norm ~3.5 times the
centre's, so that DBSCAN finds several hundred clusters and leaves some images out:
there ``same_labels`` compares a non-trivial labelling with the reference's.
Writes benchmarks/results/cluster_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

K1, K2, EPS, MIN_SAMPLES = 30, 6, 0.6, 4
MARKET, MSMT17 = 12936, 32621


FEATURES = ("random", "clustered")


def _features(n: int, dim: int, kind: str = "random", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    if kind == "clustered":
        centres = rng.standard_normal((751, dim), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        x = centres[rng.integers(0, 751, n)] + x * np.float32(3.5 / np.sqrt(dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _timed(fn, name: str, into: dict):
    """Wraps ``fn`` to add its wall time to ``into[name]`` (stage breakdown only)."""

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - t0

    return wrapper


def run_ours(feats: np.ndarray) -> dict:
    """Our round: sparse Jaccard graph + DBSCAN on it, with a per-stage breakdown."""
    import ml_collections

    from reid_jax.clustering import jaccard, pseudo_labels
    from reid_jax.evaluation import neighbors

    cfg = ml_collections.ConfigDict(dict(method="dbscan", k1=K1, k2=K2, eps=EPS, min_samples=MIN_SAMPLES))
    # Compile outside the timing: the k-NN blocks (shape depends on N) and the rest.
    neighbors.knn_search(feats, K1, chunk_size=2048, row_max=False)
    pseudo_labels.pseudo_labels(feats[:256], cfg)
    # Stage breakdown: the k-NN search and the min-sums, timed where jaccard calls them.
    inner: dict = {}
    jaccard.neighbors.knn_search = _timed(neighbors.knn_search, "knn", inner)
    jaccard.kreciprocal.upper_min_sums = _timed(jaccard.kreciprocal.upper_min_sums, "min_sums", inner)
    t0 = time.perf_counter()
    res = pseudo_labels.pseudo_labels(feats, cfg)
    total = time.perf_counter() - t0
    stages = dict(res.seconds)
    stages.update(knn=inner["knn"], min_sums=inner["min_sums"],
                  encodings_rest=res.seconds["jaccard"] - inner["knn"] - inner["min_sums"])
    return {"seconds": total, "stages": stages, "num_clusters": res.num_clusters,
            "num_outliers": res.num_outliers, "labels": res.labels.tolist()}


def _reference_jaccard(feats: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Dense transcription of the reference algorithm (N x N float32 matrices)."""
    n = feats.shape[0]
    dist = 2.0 - 2.0 * (feats @ feats.T)  # squared distance of unit vectors
    part = np.argpartition(dist, k1, axis=1)[:, :k1]
    order = np.take_along_axis(dist, part, axis=1).argsort(axis=1, kind="stable")
    rank = np.take_along_axis(part, order, axis=1)  # what a k1-NN search returns

    def recip(i: int, k: int) -> np.ndarray:
        fwd = rank[i, : k + 1]
        return fwd[np.where(rank[fwd, : k + 1] == i)[0]]

    half = int(np.around(k1 / 2))
    nn_k1 = [recip(i, k1) for i in range(n)]
    nn_half = [recip(i, half) for i in range(n)]
    v = np.zeros((n, n), np.float32)
    for i in range(n):
        r = nn_k1[i]
        expanded = r
        for c in r:
            rc = nn_half[c]
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                expanded = np.append(expanded, rc)
        expanded = np.unique(expanded)
        w = np.exp(-dist[i, expanded])
        v[i, expanded] = w / w.sum()
    del dist
    if k2 != 1:
        v_qe = np.zeros_like(v)
        for i in range(n):
            v_qe[i] = v[rank[i, :k2]].mean(axis=0)
        v = v_qe
        del v_qe
    inv_index = [np.where(v[:, i] != 0)[0] for i in range(n)]
    jaccard = np.zeros((n, n), np.float32)
    for i in range(n):
        temp_min = np.zeros(n, np.float32)
        nonzero = np.where(v[i] != 0)[0]
        for j in nonzero:
            imgs = inv_index[j]
            temp_min[imgs] += np.minimum(v[i, j], v[imgs, j])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    del v
    np.maximum(jaccard, 0, out=jaccard)
    return jaccard


def run_reference(feats: np.ndarray) -> dict:
    """Dense NumPy reference round + scikit-learn DBSCAN on the dense matrix."""
    import sklearn.cluster

    t0 = time.perf_counter()
    jac = _reference_jaccard(feats, K1, K2)
    t1 = time.perf_counter()
    labels = sklearn.cluster.DBSCAN(eps=EPS, min_samples=MIN_SAMPLES, metric="precomputed").fit_predict(jac)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "stages": {"jaccard": t1 - t0, "cluster": t2 - t1},
            "num_clusters": int(labels.max()) + 1, "num_outliers": int((labels < 0).sum()),
            "labels": labels.tolist()}


def _canonical(labels: list[int]) -> list[int]:
    """Cluster ids renumbered by first appearance (-1 kept): labels equal up to renaming.

    scikit-learn numbers DBSCAN clusters in the order it meets their core points; ours
    are renumbered by first appearance (``pseudo_labels.compact_labels``).
    """
    new: dict[int, int] = {}
    return [-1 if x < 0 else new.setdefault(x, len(new)) for x in labels]


def _child(which: str, n: int, dim: int, kind: str) -> None:
    feats = _features(n, dim, kind)
    load = os.getloadavg()[0]
    cpu0 = time.process_time()
    out = run_ours(feats) if which == "ours" else run_reference(feats)
    out["cpu_seconds"] = time.process_time() - cpu0  # includes the warm-up for ours
    out["load_avg_1min"] = load
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("RESULT " + json.dumps(out))


def _measure(which: str, n: int, dim: int, kind: str) -> dict:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, __file__, "--_child", which, "--sizes", str(n), "--dim", str(dim),
         "--features", kind],
        env=env, capture_output=True, text=True, check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{which} at N={n} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[MARKET])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--features", nargs="+", choices=FEATURES, default=["random"],
                        help="feature kinds to measure (each at every size)")
    parser.add_argument("--reference_max", type=int, default=MARKET,
                        help="run the dense reference only up to this N")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "cluster_bench.json"))
    parser.add_argument("--_child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        _child(args._child, args.sizes[0], args.dim, args.features[0])
        return

    import jax

    rows = []
    for kind in args.features:
        for n in args.sizes:
            ours = _measure("ours", n, args.dim, kind)
            row = {"n": n, "dim": args.dim, "features": kind, "ours_seconds": ours["seconds"],
                   "ours_stages": ours["stages"], "ours_cpu_seconds": ours["cpu_seconds"],
                   "ours_load_avg_1min": ours["load_avg_1min"],
                   "ours_peak_rss_gib": ours["peak_rss_gib"], "num_clusters": ours["num_clusters"],
                   "num_outliers": ours["num_outliers"]}
            if n <= args.reference_max:
                ref = _measure("reference", n, args.dim, kind)
                row.update({"reference_seconds": ref["seconds"], "reference_stages": ref["stages"],
                            "reference_cpu_seconds": ref["cpu_seconds"],
                            "reference_load_avg_1min": ref["load_avg_1min"],
                            "reference_peak_rss_gib": ref["peak_rss_gib"],
                            "speedup": ref["seconds"] / ours["seconds"],
                            "same_labels": _canonical(ref["labels"]) == _canonical(ours["labels"])})
            rows.append(row)
            print(f"N={n} {kind}: ours {ours['seconds']:.1f} s, peak {ours['peak_rss_gib']:.2f} GiB"
                  + (f"; dense reference {row['reference_seconds']:.1f} s, peak "
                     f"{row['reference_peak_rss_gib']:.2f} GiB; speed-up {row['speedup']:.1f}x; "
                     f"same labels: {row['same_labels']}" if "speedup" in row else ""), flush=True)

    header = (f"{'N':>7} {'features':>9} {'ours s':>8} {'ours GiB':>9} {'ref s':>8} {'ref GiB':>8} "
              f"{'speed-up':>9} {'clusters':>9} {'same':>5}")
    print(header)
    for r in rows:
        ref_s = f"{r['reference_seconds']:8.1f}" if "speedup" in r else f"{'-':>8}"
        ref_m = f"{r['reference_peak_rss_gib']:8.2f}" if "speedup" in r else f"{'-':>8}"
        sp = f"{r['speedup']:8.1f}x" if "speedup" in r else f"{'-':>9}"
        same = f"{str(r['same_labels']):>5}" if "speedup" in r else f"{'-':>5}"
        print(f"{r['n']:7d} {r['features']:>9} {r['ours_seconds']:8.1f} {r['ours_peak_rss_gib']:9.2f} "
              f"{ref_s} {ref_m} {sp} {r['num_clusters']:9d} {same}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    meta = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "cpu_count": os.cpu_count(), "machine": platform.platform(),
            "k1": K1, "k2": K2, "eps": EPS, "min_samples": MIN_SAMPLES}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
