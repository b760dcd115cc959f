"""The short kill -9 soak (``benchmarks/soak_resume.py --kills 1`` for each of its three
trainers: 3 kills): every killed run resumes to the uninterrupted run's final state and
evaluation, bit for bit, with no checkpoint lost."""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_short_soak_survives_every_kill(tmp_path, tfds_dir):
    out = str(tmp_path / "soak.json")
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.path.join(tempfile.gettempdir(),
                                                                  "reid_jax_xla_cache"))
    res = subprocess.run(
        [sys.executable, "benchmarks/soak_resume.py", "--kills", "1", "--seed", "1",
         "--data_dir", tfds_dir, "--out", out],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    with open(out) as f:
        reports = json.load(f)["reports"]
    assert [r["trainer"] for r in reports] == ["bot", "cluster_contrast", "metabin"]
    for r in reports:
        assert r["kills"] == 1 and r["survived"] == 1, r
        assert r["data_lost"] == 0 and r["mismatches"] == 0 and r["runs_completed"] >= 1, r
