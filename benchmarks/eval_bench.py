"""Evaluation benchmark: plain evaluation and k-reciprocal re-ranking at dataset scale.

Random L2-normalised 2048-d features at the test-set sizes of Market-1501
(3,368 queries x 15,913 gallery) and MSMT17 (11,659 x 82,161), random identities and
cameras (junk -1 and distractors 0 in the gallery). Each case runs in a fresh
subprocess so its peak resident memory (``ru_maxrss``) is its own; "base" is the RSS
after the features are made, before the case starts. Wall time and process CPU time
are both reported (with the 1-minute load average): on a shared machine the CPU-time
ratio is the steadier comparison.

Cases:
  ours_eval      reid_jax.evaluation.evaluate.evaluate_features (streamed, no full sort)
  ours_rerank    the same with rerank=True (memory-bounded k-reciprocal re-ranking)
  numpy_eval     NumPy reference: full distance matrix, argsort, per-query loop
                 (the structure of torchreid's eval_market1501)
  numpy_rerank   NumPy reference re-ranking (dense N x N, per-row loops, float16 V as
                 in Zhong's official code) followed by numpy_eval's protocol

Usage:
  python benchmarks/eval_bench.py                                  # Market size, all cases
  python benchmarks/eval_bench.py --sizes msmt17 --cases ours_eval ours_rerank
  python benchmarks/eval_bench.py --sizes msmt17 --cases ours_rerank --dim 64  # memory check

Writes benchmarks/results/eval_bench.json (merged with earlier runs of other sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SIZES = {
    # name: (queries, gallery, identities, cameras)
    'market1501': (3368, 15913, 751, 6),
    'msmt17': (11659, 82161, 3060, 15),
    'tiny': (100, 500, 50, 3),  # smoke test of the script itself
}
CASES = ('ours_eval', 'ours_rerank', 'numpy_eval', 'numpy_rerank')
DIM = 2048
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'eval_bench.json')


def make_data(size, dim=DIM, seed=0):
    nq, ng, ids, cams = SIZES[size]
    rng = np.random.default_rng(seed)
    qf = rng.standard_normal((nq, dim), dtype=np.float32)
    qf /= np.linalg.norm(qf, axis=1, keepdims=True)
    gf = rng.standard_normal((ng, dim), dtype=np.float32)
    gf /= np.linalg.norm(gf, axis=1, keepdims=True)
    q_pids = rng.integers(1, ids + 1, nq)
    g_pids = rng.integers(1, ids + 1, ng)
    special = rng.random(ng)
    g_pids[special < 0.15] = 0  # distractors
    g_pids[special > 0.95] = -1  # junk
    return qf, gf, q_pids, g_pids, rng.integers(0, cams, nq), rng.integers(0, cams, ng)


# ----------------------------------------------------------------------------------
# NumPy references (straightforward, dense; written for this benchmark).
# ----------------------------------------------------------------------------------


def numpy_market_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Per-query loop over a fully sorted distance matrix (torchreid's structure)."""
    order = np.argsort(distmat, axis=1)
    all_cmc, all_ap, all_inp = [], [], []
    for i in range(distmat.shape[0]):
        o = order[i]
        remove = ((g_pids[o] == q_pids[i]) & (g_camids[o] == q_camids[i])) | (g_pids[o] == -1)
        hits = (g_pids[o] == q_pids[i])[~remove].astype(np.float64)
        if not hits.any():
            continue
        cmc = hits.cumsum()
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        pos = np.flatnonzero(hits)
        all_inp.append(hits.sum() / (pos[-1] + 1))
        precision = hits.cumsum() / (np.arange(len(hits)) + 1)
        all_ap.append((precision * hits).sum() / hits.sum())
    return {'mAP': float(np.mean(all_ap)), 'mINP': float(np.mean(all_inp)),
            'rank1': float(np.mean(all_cmc, axis=0)[0])}


def numpy_sq_dist(a, b):
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0)


def numpy_rerank(qf, gf, k1=20, k2=6, lambda_value=0.3):
    """Dense k-reciprocal re-ranking with per-row loops, following Zhong et al.'s algorithm."""
    nq = qf.shape[0]
    feats = np.concatenate([qf, gf])
    n = feats.shape[0]
    original = numpy_sq_dist(feats, feats)
    original = np.transpose(original / np.max(original, axis=0))
    v = np.zeros_like(original, dtype=np.float16)
    rank = np.argsort(original).astype(np.int32)

    def reciprocal(i, k):
        forward = rank[i, :k + 1]
        backward = rank[forward, :k + 1]
        return forward[np.where(backward == i)[0]]

    half = int(np.around(k1 / 2))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = r
        for cand in r:
            h = reciprocal(cand, half)
            if len(np.intersect1d(h, r)) > 2 / 3 * len(h):
                expanded = np.append(expanded, h)
        expanded = np.unique(expanded)
        w = np.exp(-original[i, expanded])
        v[i, expanded] = w / np.sum(w)
    original = original[:nq]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float16)
        for i in range(n):
            v_qe[i] = np.mean(v[rank[i, :k2]], axis=0)
        v = v_qe
    inv_index = [np.where(v[:, i] != 0)[0] for i in range(n)]
    jaccard = np.zeros_like(original, dtype=np.float16)
    for i in range(nq):
        temp_min = np.zeros((1, n), dtype=np.float16)
        nonzero = np.where(v[i] != 0)[0]
        for k in nonzero:
            rows = inv_index[k]
            temp_min[0, rows] += np.minimum(v[i, k], v[rows, k])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    final = jaccard * (1 - lambda_value) + original * lambda_value
    return final[:, nq:]


# ----------------------------------------------------------------------------------
# One case in this process.
# ----------------------------------------------------------------------------------


def rss_gib():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 30


def run_case(case, size, dim=DIM):
    qf, gf, qp, gp, qc, gc = make_data(size, dim)
    if case.startswith('ours'):
        # Imported before the clock starts, like NumPy; jit compilation is timed.
        from reid_jax.evaluation import evaluate
    base = rss_gib()
    t0 = time.perf_counter()
    c0 = time.process_time()
    if case.startswith('ours'):
        res = evaluate.evaluate_features(qf, gf, qp, gp, qc, gc, metric='euclidean',
                                         rerank=case == 'ours_rerank')
        metrics = {k: float(res[k]) for k in ('mAP', 'mINP', 'rank1')}
    elif case == 'numpy_eval':
        metrics = numpy_market_eval(np.sqrt(numpy_sq_dist(qf, gf)), qp, gp, qc, gc)
    else:
        metrics = numpy_market_eval(numpy_rerank(qf, gf), qp, gp, qc, gc)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    return {'case': case, 'size': size, 'dim': dim, 'seconds': seconds, 'cpu_seconds': cpu_seconds,
            'load_avg_1min': os.getloadavg()[0], 'peak_rss_gib': peak,
            'base_rss_gib': base, **metrics}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', nargs='+', default=['market1501'], choices=sorted(SIZES))
    parser.add_argument('--cases', nargs='+', default=list(CASES), choices=CASES)
    parser.add_argument('--dim', type=int, default=DIM,
                        help='feature size (a small one measures memory and the non-matmul '
                             'stages at full N quickly)')
    parser.add_argument('--child', nargs=2, metavar=('CASE', 'SIZE'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print('RESULT ' + json.dumps(run_case(*args.child, dim=args.dim)), flush=True)
        return
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    rows = []
    for size in args.sizes:
        for case in args.cases:
            nq, ng = SIZES[size][:2]
            if case == 'numpy_rerank' and (nq + ng) ** 2 * 4 * 3 > 20 * 2 ** 30:
                print(f'  skip {size} {case}: dense N x N matrices need > 20 GiB', flush=True)
                continue
            proc = subprocess.run([sys.executable, __file__, '--child', case, size,
                                   '--dim', str(args.dim)],
                                  capture_output=True, text=True, env=env)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
            if proc.returncode or not line:
                print(f'{size} {case} failed:\n{proc.stderr[-2000:]}', file=sys.stderr)
                continue
            rows.append(json.loads(line[0][7:]))
            r = rows[-1]
            print(f"  done {size:<10} {case:<13} {r['seconds']:8.1f} s  peak {r['peak_rss_gib']:.2f} GiB",
                  flush=True)
    by_key = {(r['size'], r['case'], r['dim']): r for r in rows}
    for r in rows:
        ref = by_key.get((r['size'], r['case'].replace('ours', 'numpy'), r['dim']))
        if r['case'].startswith('ours') and ref:
            r['speedup_vs_numpy'] = ref['seconds'] / r['seconds']
            r['cpu_speedup_vs_numpy'] = ref['cpu_seconds'] / r['cpu_seconds']
    header = (f"{'size':<11}{'dim':>5} {'case':<14}{'time s':>9}{'cpu s':>9}{'load':>6}{'peak GiB':>10}"
              f"{'base GiB':>10}{'mAP':>9}{'rank1':>8}{'speedup':>9}{'cpu spd':>9}")
    print(header)
    print('-' * len(header))
    for r in rows:
        speed = f"{r['speedup_vs_numpy']:.1f}x" if 'speedup_vs_numpy' in r else ''
        cpu_speed = f"{r['cpu_speedup_vs_numpy']:.1f}x" if 'cpu_speedup_vs_numpy' in r else ''
        print(f"{r['size']:<11}{r['dim']:>5} {r['case']:<14}{r['seconds']:9.1f}{r['cpu_seconds']:9.1f}"
              f"{r['load_avg_1min']:6.1f}{r['peak_rss_gib']:10.2f}{r['base_rss_gib']:10.2f}"
              f"{r['mAP']:9.4f}{r['rank1']:8.4f}{speed:>9}{cpu_speed:>9}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    previous = []
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            previous = json.load(f).get('runs', [])
    keep = [p for p in previous if (p['size'], p['case'], p.get('dim', DIM)) not in by_key]
    with open(RESULTS, 'w') as f:
        json.dump({'cpu_count': os.cpu_count(), 'runs': keep + rows}, f, indent=1)
    print(f'wrote {RESULTS}')


if __name__ == '__main__':
    main()
