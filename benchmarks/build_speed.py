"""Build-speed benchmark: the market1501 builder on a Market-1501-sized fixture.

The fixture has the real layout and counts of ``Market-1501-v15.09.15``:
``bounding_box_train`` 12,936 files (751 ids), ``query`` 3,368 (750 ids) and
``bounding_box_test`` 19,732 (13,120 of the 750 test ids, 2,793 distractors ``0000``,
3,819 junk ``-1``), names such as ``0002_c1s1_000451_03.jpg``, 6 cameras; so the
``standard`` config's published-count validation passes unchanged. The pictures are
tiny flat-colour JPEGs (``--noise`` makes them random-noise JPEGs, whose size is closer
to the real 128x64 crops), written from a small pool of encoded images so that
generating 36,036 files takes seconds. It is generated under /tmp, never in the repo.

``--scales 0.25,0.5,1`` builds shrunk copies too (identities and images scaled, the
config's counts replaced to match), to see whether the build's peak memory grows with
the dataset (it should not beyond what the TFDS writer holds: its shuffler keeps a
split's serialized examples in memory up to 1 GB before spilling to disk,
``tensorflow_datasets/core/shuffle.py``, ``MAX_MEM_BUFFER_SIZE``).

``--writer_buffer_mb 1`` lowers that limit, so that the shuffler spills to disk: with it
the peak should no longer depend on the dataset's size.

Each build runs in a fresh subprocess so that its peak resident memory (``ru_maxrss``)
is its own; "base" is the child's RSS after imports, before the build.

Usage:
  python benchmarks/build_speed.py                       # full Market size, 32x16 JPEGs
  python benchmarks/build_speed.py --scales 0.25,0.5,1 --height 128 --width 64 --noise
  python benchmarks/build_speed.py --scales 0.5,1 --height 64 --width 32 --noise --writer_buffer_mb 1

Prints a table and writes benchmarks/results/build_speed.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'benchmarks', 'results', 'build_speed.json')
TOP = 'Market-1501-v15.09.15'

# Market-1501's published sizes (README of the release; torchreid's statistics).
TRAIN_IDS, TRAIN_IMAGES = 751, 12936
TEST_IDS, QUERY_IMAGES = 750, 3368
GALLERY_PERSON_IMAGES, DISTRACTORS, JUNK = 13120, 2793, 3819  # 19,732 files in all
NUM_CAMERAS = 6


def _spread(total, n):
    """Sizes of ``n`` groups summing to ``total``, as even as possible."""
    base, rem = divmod(total, n)
    return [base + (i < rem) for i in range(n)]


def market_layout(scale):
    """Folder -> file names of a Market-1501-shaped fixture, and the counts it should pass.

    Returns:
      (layout, counts): ``layout`` maps folder to a list of names; ``counts`` is the
      ``MarketConfig.counts`` the builder checks (the published ones at scale 1).
    """
    n_train = max(2, round(TRAIN_IDS * scale))
    n_test = max(2, round(TEST_IDS * scale))
    frame = iter(range(10**6))

    def name(pid, cam, j):
        f = next(frame)
        p = '-1' if pid < 0 else f'{pid:04d}'
        return f'{p}_c{cam}s{1 + f % 6}_{f:06d}_{j % 100:02d}.jpg'

    train_ids = range(2, 2 + n_train)  # ids 0 and 1 are never persons in Market
    test_ids = range(2 + n_train, 2 + n_train + n_test)
    layout = {'bounding_box_train': [], 'query': [], 'bounding_box_test': []}
    for i, (pid, n) in enumerate(zip(train_ids, _spread(max(2 * n_train, round(TRAIN_IMAGES * scale)), n_train))):
        layout['bounding_box_train'] += [name(pid, (i + j) % NUM_CAMERAS + 1, j) for j in range(n)]
    q_sizes = _spread(max(n_test, round(QUERY_IMAGES * scale)), n_test)
    g_sizes = _spread(max(n_test, round(GALLERY_PERSON_IMAGES * scale)), n_test)
    for i, pid in enumerate(test_ids):
        layout['query'] += [name(pid, (i + j) % NUM_CAMERAS + 1, j) for j in range(q_sizes[i])]
        # Gallery cameras start 3 away from the query's, so every query has a cross-camera match.
        layout['bounding_box_test'] += [
            name(pid, (i + j + 3) % NUM_CAMERAS + 1, j) for j in range(g_sizes[i])
        ]
    n_distractors = max(1, round(DISTRACTORS * scale))
    layout['bounding_box_test'] += [name(0, j % NUM_CAMERAS + 1, j) for j in range(n_distractors)]
    layout['bounding_box_test'] += [name(-1, j % NUM_CAMERAS + 1, j) for j in range(round(JUNK * scale))]
    counts = {
        'train': (len(layout['bounding_box_train']), n_train),
        'query': (len(layout['query']), n_test),
        'gallery': (sum(g_sizes) + n_distractors, n_test + 1),  # + distractor id 0
    }
    return layout, counts


def _jpeg_pool(height, width, noise, n=64, seed=0):
    """``n`` encoded JPEGs: flat colours, or uniform noise (larger files, as real crops)."""
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(n):
        if noise:
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:
            pixels = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (height, width, 3))
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format='JPEG', quality=90)
        pool.append(buf.getvalue())
    return pool


def write_fixture(manual_dir, layout, height, width, noise):
    """Writes the fixture under ``manual_dir/Market-1501-v15.09.15``; returns (files, bytes)."""
    pool = _jpeg_pool(height, width, noise)
    files = nbytes = 0
    for folder, names in layout.items():
        d = os.path.join(manual_dir, TOP, folder)
        os.makedirs(d, exist_ok=True)
        for k, n in enumerate(names):
            data = pool[k % len(pool)]
            with open(os.path.join(d, n), 'wb') as f:
                f.write(data)
            files += 1
            nbytes += len(data)
    return files, nbytes


def _rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def child(manual_dir, data_dir, counts_json, config_name, buffer_mb):
    """Runs in the subprocess: builds market1501 and prints one JSON line of measurements."""
    sys.path.insert(0, ROOT)
    import tensorflow_datasets as tfds  # noqa: F401  (import cost is part of "base")
    from tensorflow_datasets.core import shuffle

    if float(buffer_mb) > 0:
        # The writer's shuffler keeps a split in memory up to this size, then spills to disk.
        shuffle.MAX_MEM_BUFFER_SIZE = int(float(buffer_mb) * 2**20)

    from data_builders import registry
    from data_builders.market1501 import market1501_dataset_builder as market

    base = _rss_mb()
    config = market.Builder.builder_configs['standard']
    counts = {k: tuple(v) for k, v in json.loads(counts_json).items()}
    if counts != dict(config.counts):
        config = dataclasses.replace(config, name=config_name, counts=counts)
    else:
        config = None  # the published config, validation unchanged
    # RSS over time, to tell a steady climb (something accumulating) from a plateau.
    trace, stop = [], threading.Event()

    def sample():
        t0 = time.perf_counter()
        while not stop.wait(0.25):
            trace.append((round(time.perf_counter() - t0, 2), round(_rss_mb(), 1)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    name = 'market1501' if config else 'market1501/standard'
    builder = registry.prepare(name, data_dir=data_dir, manual_dir=manual_dir, overwrite=True,
                               config=config)
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    splits = builder.info.splits
    print(json.dumps({
        'seconds': seconds,
        'images': sum(s.num_examples for s in splits.values()),
        'split_images': {k: s.num_examples for k, s in splits.items()},
        'written_mb': sum(s.num_bytes for s in splits.values()) / 2**20,
        'base_rss_mb': base,
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'rss_trace': trace,
        'writer_buffer_mb': shuffle.MAX_MEM_BUFFER_SIZE / 2**20,
    }))


def run_case(scale, args):
    """Generates the fixture at ``scale``, builds it in a subprocess, returns its row."""
    work = os.path.join(args.work_dir, f'scale_{scale:g}')
    shutil.rmtree(work, ignore_errors=True)
    manual, data = os.path.join(work, 'manual'), os.path.join(work, 'tfds')
    layout, counts = market_layout(scale)
    t0 = time.perf_counter()
    files, nbytes = write_fixture(manual, layout, args.height, args.width, args.noise)
    gen_s = time.perf_counter() - t0
    cmd = [sys.executable, os.path.abspath(__file__), '--child', manual, data, json.dumps(counts),
           f'bench_s{scale:g}'.replace('.', 'p'), str(args.writer_buffer_mb)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f'build at scale {scale} failed (exit {proc.returncode})')
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(scale=scale, files=files, fixture_mb=nbytes / 2**20, generate_seconds=gen_s,
               images_per_s=row['images'] / row['seconds'],
               growth_mb=row['peak_rss_mb'] - row['base_rss_mb'])
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scales', default='1', help='comma-separated fractions of Market-1501')
    parser.add_argument('--height', type=int, default=32)
    parser.add_argument('--width', type=int, default=16)
    parser.add_argument('--noise', action='store_true', help='random-noise JPEGs (larger files)')
    parser.add_argument('--work_dir', default='/tmp/reid_build_speed')
    parser.add_argument('--keep', action='store_true', help='keep the fixture and the build')
    parser.add_argument('--writer_buffer_mb', type=float, default=0,
                        help='lower the TFDS shuffler\'s in-memory limit (0: TFDS default, 1 GB)')
    parser.add_argument('--child', nargs=5, metavar=('MANUAL', 'DATA', 'COUNTS', 'NAME', 'BUFFER'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = [run_case(float(s), args) for s in args.scales.split(',')]
    header = (f"{'scale':>5} {'files':>7} {'images':>7} {'fixture MB':>10} {'written MB':>10} "
              f"{'seconds':>8} {'images/s':>9} {'base MB':>8} {'peak MB':>8} {'growth MB':>9}")
    buffer = f'{args.writer_buffer_mb:g} MB' if args.writer_buffer_mb > 0 else '1 GB (TFDS default)'
    print(f'market1501 builder, {args.height}x{args.width} {"noise" if args.noise else "flat"} JPEGs, '
          f'{os.cpu_count()} CPUs, writer buffer {buffer}')
    print(header)
    for r in rows:
        print(f"{r['scale']:>5g} {r['files']:>7} {r['images']:>7} {r['fixture_mb']:>10.1f} "
              f"{r['written_mb']:>10.1f} {r['seconds']:>8.1f} {r['images_per_s']:>9.0f} "
              f"{r['base_rss_mb']:>8.0f} {r['peak_rss_mb']:>8.0f} {r['growth_mb']:>9.0f}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    key = f'{args.height}x{args.width}_{"noise" if args.noise else "flat"}'
    if args.writer_buffer_mb > 0:
        key += f'_buffer{args.writer_buffer_mb:g}mb'
    old = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            old = json.load(f)
    old[key] = {'cpus': os.cpu_count(), 'rows': rows}
    with open(RESULTS, 'w') as f:
        json.dump(old, f, indent=1)
    print(f'wrote {RESULTS}')


if __name__ == '__main__':
    main()
