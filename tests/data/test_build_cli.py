"""``python -m reid_jax.data.build``: exit status and output, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys

from data_builders.cuhk01 import fixture

NUM_IDS, NUM_TEST = 12, 5
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The command with the default CUHK01 config shrunk to the 12-identity fixture.
_SHRUNK_MAIN = f"""
import sys
from data_builders.cuhk01 import cuhk01_dataset_builder as c
cfg = c.Builder.builder_configs['p486_s0']
cfg.num_ids, cfg.num_test_ids = {NUM_IDS}, {NUM_TEST}
from reid_jax.data import build
sys.exit(build.main(sys.argv[1:]))
"""


def run(args, shrink=False):
    cmd = [sys.executable, "-c", _SHRUNK_MAIN] if shrink else [sys.executable, "-m", "reid_jax.data.build"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(cmd + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_missing_manual_dir_is_one_line_error(tmp_path):
    res = run(["cuhk01/p486_s0", "--manual_dir", str(tmp_path / "nope"), "--data_dir", str(tmp_path / "out")])
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: cuhk01: folder ") and "nope" in res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_builds_fixture_and_prints_counts(tmp_path):
    manual = fixture.make_campus(str(tmp_path / "manual"), NUM_IDS)
    res = run(["cuhk01", "--manual_dir", manual, "--data_dir", str(tmp_path / "out")], shrink=True)
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line.split()}
    n_train = NUM_IDS - NUM_TEST
    assert rows["train"] == [str(4 * n_train), str(n_train), "2"]
    assert rows["query"] == [str(2 * NUM_TEST), str(NUM_TEST), "1"]
    assert rows["gallery"] == [str(2 * NUM_TEST), str(NUM_TEST), "1"]
    assert f"written to {tmp_path / 'out'}" in res.stdout and "prepared in" in res.stdout


def test_list_shows_cuhk01_configs():
    res = run(["--list"])
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("cuhk01:"))
    assert "p486_s0" in line and "p100_s9" in line


def test_custom_folder_from_pattern(tmp_path):
    manual = fixture.make_campus(str(tmp_path / "manual"), NUM_IDS)
    pattern = r"campus/(?P<pid>\d{4})(?:(?P<cam0>00[12])|(?P<cam1>00[34]))\.png"
    res = run(["custom_folder", "--manual_dir", manual, "--data_dir", str(tmp_path / "out"),
               "--config_name", "campus", "--num_test_ids", str(NUM_TEST), "--pattern", pattern])
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line.split()}
    assert rows["query"] == [str(2 * NUM_TEST), str(NUM_TEST), "1"]
    assert "custom_folder/campus" in res.stdout
