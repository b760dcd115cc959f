"""compare_runs: mean +- std over seeds from the runs' metrics files, rounds averaged."""

import json
import subprocess
import sys

import numpy as np
import pytest

from reid_jax.tools import compare_runs


def _run(path, before, after, rounds=()):
    path.mkdir()
    recs = [{"step": 0, "eval_before/rank1": before[0], "eval_before/mAP": before[1]}]
    recs += [{"step": i, "cluster/round": i, "cluster/nmi": n, "cluster/num_clusters": c}
             for i, (n, c) in enumerate(rounds, 1)]
    recs += [{"step": 9, "eval/rank1": 0.0, "eval/mAP": 0.0},  # an earlier evaluation
             {"step": 10, "eval/rank1": after[0], "eval/mAP": after[1]}]
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return str(path)


def test_summarize_gives_mean_and_sample_std_over_seeds(tmp_path):
    a = _run(tmp_path / "a", (0.1, 0.05), (0.4, 0.3), [(0.5, 100), (0.7, 80)])
    b = _run(tmp_path / "b", (0.2, 0.07), (0.6, 0.5), [(0.6, 90)])
    [row] = compare_runs.summarize({"m": [a, b]})
    assert row["runs"] == 2
    assert row["mAP"] == pytest.approx(0.4) and row["mAP_std"] == pytest.approx(np.std([0.3, 0.5], ddof=1))
    assert row["before_rank1"] == pytest.approx(0.15)
    assert row["last_nmi"] == pytest.approx((0.7 + 0.6) / 2)  # each run's last round
    assert row["rounds"][0]["nmi"] == pytest.approx(0.55)
    assert row["rounds"][1]["nmi"] == pytest.approx(0.7)  # only run a reached round 2


def test_command_line_writes_json_and_png_and_rejects_bad_groups(tmp_path):
    a = _run(tmp_path / "a", (0.1, 0.05), (0.4, 0.3), [(0.5, 100)])
    out = str(tmp_path / "cmp")
    proc = subprocess.run([sys.executable, "-m", "reid_jax.tools.compare_runs", "--out", out,
                           f"cc={a}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "40.0 +- 0.0" in proc.stdout
    assert json.load(open(out + ".json"))[0]["group"] == "cc"
    assert (tmp_path / "cmp_rounds.png").stat().st_size > 0
    bad = subprocess.run([sys.executable, "-m", "reid_jax.tools.compare_runs", "--out", out,
                          f"cc={tmp_path / 'missing'}"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
