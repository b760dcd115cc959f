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


TINY = "experiments/bot.py:synthetic_tiny"


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--config", "experiments/bot.py:nope"], "unknown config argument 'nope'"),
        (["--config", TINY, "--config.optim.lrr=1"], 'Did you mean "lr"'),
        (["--config", "experiments/missing.py"], "No such file"),
        (["--config", TINY, "--config.data.p=99"], "impossible P x K"),
        (["--config", "experiments/bot.py:cuhk01"], "run: python -m reid_jax.data.build cuhk01"),
        (["--config", TINY, "--config.trainer=foo"], "unknown config.trainer 'foo'"),
        (["--config", TINY, "--config.model.backbone=resnet7"],
         "config.model.backbone = 'resnet7': choose from"),
        (["--config", TINY, "--config.data.height=-5"], "config.data.height = -5: must be between 16"),
        # A key of another trainer is not a key of this one.
        (["--config", TINY, "--config.cluster.eps=0.5"], "unknown config key"),
        # A key of this trainer that the chosen settings cannot use.
        (["--config", TINY, "--config.optim.momentum=0.5"],
         "config.optim.momentum = 0.5: set but not used: it applies only with optim.name='sgd'"),
        (["--config", TINY, "--config.model.part_dim=64"], "applies only with model.head='pcb'"),
        (["--config", TINY, "--config.optim.lr=nan"], "config.optim.lr = nan: must be between"),
    ],
)
def test_bad_input_is_one_line(args, expected, tmp_path, tfds_dir):
    res = _run([*args, "--workdir", str(tmp_path / "w")], tfds_dir)
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("config", [
    "bot.py", "cluster_contrast.py", "pplr.py", "cap.py", "mmt.py", "metabin.py", "m3l.py",
])
def test_missing_init_weights_are_one_line_for_every_trainer(config, tmp_path, tfds_dir):
    missing = str(tmp_path / "nonexistent.pth")
    for key in ("init_from", "init_from_run"):
        res = _run(["--config", f"experiments/{config}:synthetic_tiny", f"--config.model.{key}={missing}",
                    "--workdir", str(tmp_path / "w")], tfds_dir)
        assert res.returncode == 2, res.stderr[-2000:]
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and missing in errors[0] and key in errors[0], res.stderr[-2000:]
        assert not os.path.exists(tmp_path / "w"), "refused before any work"


def test_splits_evaluator_reports_the_mean_over_test_sets(tmp_path, tfds_dir):
    """The 'splits' evaluator evaluates each listed dataset; two copies average to one."""
    from experiments import bot
    from reid_jax import main
    from reid_jax.train import loop

    config = bot.get_config("synthetic_tiny")
    config.data.data_dir = tfds_dir
    config.train.num_epochs = 1
    config.eval.before_training = False
    workdir = str(tmp_path / "w")
    single = loop.train(config, workdir)["after"]
    config.eval.evaluators = ("retrieval", "splits")
    config.eval.splits = "synthetic_persons/tiny, synthetic_persons/tiny"
    result = loop.evaluate(config, workdir)
    assert result["after"] == single
    splits = result["evaluations"]["splits"]
    assert [name for name, _ in splits["rows"]] == ["synthetic_persons/tiny"] * 2
    assert splits["num_splits"] == 2
    for key in ("rank1", "mAP"):
        assert abs(splits[key] - single[key]) < 1e-6 and splits[f"{key}_std"] < 1e-9
    table = main.summary(result)
    assert "evaluator splits" in table and "mean of 2" in table and "std" in table
