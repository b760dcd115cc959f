"""The supervised trainer through the run loop: sharded step, exact resume, refusal of
foreign and old-format checkpoints, NaN handling."""

import jax
import numpy as np
import pytest

from experiments import bot
from reid_jax import checkpoint, errors, sharding
from reid_jax.train import loop


def _config(tfds_dir, **overrides):
    c = bot.get_config("synthetic_tiny")
    c.data.data_dir = tfds_dir
    c.num_devices = 1
    c.eval.before_training = False
    for key, value in overrides.items():
        node, leaf = key.rsplit(".", 1) if "." in key else ("", key)
        (c if not node else c[node])[leaf] = value
    return c


def _steps(config, n=2):
    """Losses and parameters after ``n`` steps of epoch 0 from the initial state."""
    trainer, ctx = loop.build(config)
    state, batches = loop.host_batches(trainer, config, trainer.state, 0, n)
    rng = jax.random.key(7)
    losses = []
    for b in batches:
        state, metrics = trainer.train_step(state, sharding.to_global(b, ctx.mesh), rng)
        losses.append(float(metrics["loss"]))
    return losses, jax.device_get(state.train.params)


def test_sharded_step_matches_single_device(tfds_dir):
    assert len(jax.devices()) == 8, "conftest sets 8 simulated CPU devices"
    # SGD: Adam's g / sqrt(v) would amplify float rounding in near-zero gradients.
    config = _config(tfds_dir, **{"optim.name": "sgd", "optim.lr": 0.05})
    loss1, params1 = _steps(config)
    config.num_devices = 8
    loss8, params8 = _steps(config)
    np.testing.assert_allclose(loss1, loss8, rtol=1e-4)
    for a, b in zip(jax.tree.leaves(params1), jax.tree.leaves(params8)):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)


@pytest.fixture(scope="module")
def full_run(tfds_dir, tmp_path_factory):
    """An uninterrupted 2-epoch run: (result, workdir)."""
    workdir = str(tmp_path_factory.mktemp("full"))
    return loop.train(_config(tfds_dir), workdir), workdir


def test_resume_continues_exactly(tfds_dir, tmp_path, full_run):
    config = _config(tfds_dir)
    full, _ = full_run
    # Interrupted after epoch 1, then resumed in the same workdir.
    first = loop.train(_config(tfds_dir, **{"train.stop_after_epochs": 1}), str(tmp_path / "re"))
    assert first["epochs_done"] == 1
    resumed = loop.train(config, str(tmp_path / "re"))
    assert int(resumed["state"].train.step) == int(full["state"].train.step)
    for a, b in zip(jax.tree.leaves(full["state"]), jax.tree.leaves(resumed["state"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed["after"] == full["after"]


def test_checkpoint_from_another_config_is_refused(tfds_dir, full_run):
    _, workdir = full_run
    other = _config(tfds_dir, **{"optim.lr": 0.123})
    with pytest.raises(errors.ReidError, match="different config"):
        loop.train(other, workdir)
    # Run-control keys may change: evaluating with another batch size is accepted.
    ok = _config(tfds_dir, **{"eval.batch_size": 8, "train.log_every_steps": 3})
    assert loop.evaluate(ok, workdir)["after"]["num_valid_queries"] > 0


def test_checkpoint_of_an_older_format_is_refused(tfds_dir, tmp_path):
    # A checkpoint laid out as before the trainer layer (no format version in its meta).
    mngr = checkpoint.manager(str(tmp_path))
    mngr.save(1, args=checkpoint.ocp.args.Composite(
        state=checkpoint.ocp.args.StandardSave({"step": np.zeros((), np.int32)}),
        meta=checkpoint.ocp.args.JsonSave({"epoch": 1}),
    ))
    mngr.wait_until_finished()
    with pytest.raises(errors.ReidError, match="format 1 .*format 2"):
        loop.train(_config(tfds_dir), str(tmp_path))


def _nan_first_leaf(tree):
    leaves, treedef = jax.tree.flatten(tree)
    leaves[0] = leaves[0] * np.nan
    return jax.tree.unflatten(treedef, leaves)


def test_nan_loss_stops_with_the_step_and_skips_the_update(tfds_dir, tmp_path, monkeypatch):
    from reid_jax.train import init

    real = init.model_variables
    monkeypatch.setattr(init, "model_variables",
                        lambda *a, **k: (_nan_first_leaf(real(*a, **k)[0]), real(*a, **k)[1]))
    with pytest.raises(errors.ReidError, match="NaN or inf at step 0"):
        loop.train(_config(tfds_dir), str(tmp_path / "nan"))


def test_nan_step_leaves_parameters_untouched(tfds_dir):
    config = _config(tfds_dir)
    trainer, ctx = loop.build(config)
    st = trainer.state.train
    state = trainer.state.replace(train=st.replace(params=_nan_first_leaf(st.params)))
    before = jax.device_get(state.train.params)
    state, batches = loop.host_batches(trainer, config, state, 0, 1)
    state, _ = trainer.train_step(state, sharding.to_global(batches[0], ctx.mesh), jax.random.key(0))
    assert int(state.train.nonfinite_step) == 0 and int(state.train.step) == 1
    after = jax.device_get(state.train.params)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        np.testing.assert_array_equal(a, b)


def test_select_best_reports_the_best_evaluation_marked_as_test_set_selected(tfds_dir, tmp_path):
    from reid_jax import main

    config = _config(tfds_dir, **{"eval.every_epochs": 1, "eval.select_best": True})
    result = loop.train(config, str(tmp_path / "best"))
    best = result["best"]
    assert best["epoch"] in (1, 2) and best["mAP"] >= result["after"]["mAP"] - 1e-12
    assert "test-set-selected" in main.summary(result)
    plain = loop.train(_config(tfds_dir), str(tmp_path / "plain"))
    assert plain["best"] is None
