"""The command line: each bad input ends with one 'error:' line and exit status 2."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, tfds_dir):
    env = dict(os.environ, TFDS_DATA_DIR=tfds_dir, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "reid_jax.main", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--config", "experiments/bot.py:nope"], "unknown config argument 'nope'"),
        (["--config", "experiments/bot.py:synthetic_tiny", "--config.optim.lrr=1"], 'Did you mean "lr"'),
        (["--config", "experiments/missing.py"], "No such file"),
        (["--config", "experiments/bot.py:synthetic_tiny", "--config.data.p=99"], "impossible P x K"),
        (["--config", "experiments/bot.py:cuhk01"], "run: python -m reid_jax.data.build cuhk01"),
        (["--config", "experiments/bot.py:synthetic_tiny", "--config.trainer=foo"], "unknown config.trainer"),
    ],
)
def test_bad_input_is_one_line(args, expected, tmp_path, tfds_dir):
    res = _run([*args, "--workdir", str(tmp_path / "w")], tfds_dir)
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr


def test_eval_splits_mean_over_test_sets(tmp_path, tfds_dir):
    """eval.splits evaluates each listed dataset; the mean of two copies equals the one."""
    from experiments import bot
    from reid_jax import main
    from reid_jax.train import supervised

    config = bot.get_config("synthetic_tiny")
    config.data.data_dir = tfds_dir
    config.train.num_epochs = 1
    config.eval.before_training = False
    workdir = str(tmp_path / "w")
    single = supervised.train_and_evaluate(config, workdir)["after"]
    config.eval.splits = "synthetic_persons/tiny, synthetic_persons/tiny"
    result = main.evaluate_splits(config, workdir)
    assert [name for name, _ in result["splits"]] == ["synthetic_persons/tiny"] * 2
    mean = result["mean"]
    assert mean["num_splits"] == 2
    for key in ("rank1", "mAP"):
        assert abs(mean[key] - single[key]) < 1e-6 and mean[f"{key}_std"] < 1e-9
    table = main.splits_summary(result)
    assert "mean of 2" in table and "std" in table
