"""The supervised trainer: sharded step, exact resume, refusal of foreign checkpoints, NaN."""

import jax
import numpy as np
import pytest

from experiments import bot
from reid_jax import errors, sharding
from reid_jax.data import pipeline, samplers
from reid_jax.train import supervised


def _config(tfds_dir, **overrides):
    c = bot.get_config("synthetic_tiny")
    c.data.data_dir = tfds_dir
    c.num_devices = 1
    c.eval.before_training = False
    for key, value in overrides.items():
        node, leaf = key.rsplit(".", 1) if "." in key else ("", key)
        (c if not node else c[node])[leaf] = value
    return c


def _one_step(config, mesh):
    train, _, _ = supervised.open_splits(config)
    steps = samplers.steps_per_epoch(train.labels, config.data.p, config.data.k)
    model, state, tx, lr_fn = supervised.create_state(config, train.num_classes, steps, mesh)
    step = supervised.make_train_step(model, tx, lr_fn, config, mesh)
    idx = samplers.pk_batches(train.labels, train.camera_ids, config.data.p, config.data.k, 0, 0, 2)
    batches = list(pipeline.train_loader(train, idx, config.data.height, config.data.width, 1))
    rng = jax.random.key(7)
    losses = []
    for b in batches:
        state, metrics = step(state, sharding.to_global(b, mesh), rng)
        losses.append(float(metrics["loss"]))
    return losses, jax.device_get(state.params)


def test_sharded_step_matches_single_device(tfds_dir):
    assert len(jax.devices()) == 8, "conftest sets 8 simulated CPU devices"
    # SGD: Adam's g / sqrt(v) would amplify float rounding in near-zero gradients.
    config = _config(tfds_dir, **{"optim.name": "sgd", "optim.lr": 0.05})
    loss1, params1 = _one_step(config, sharding.make_mesh(1))
    loss8, params8 = _one_step(config, sharding.make_mesh(8))
    np.testing.assert_allclose(loss1, loss8, rtol=1e-4)
    for a, b in zip(jax.tree.leaves(params1), jax.tree.leaves(params8)):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)


@pytest.fixture(scope="module")
def full_run(tfds_dir, tmp_path_factory):
    """An uninterrupted 2-epoch run: (result, workdir)."""
    workdir = str(tmp_path_factory.mktemp("full"))
    return supervised.train_and_evaluate(_config(tfds_dir), workdir), workdir


def test_resume_continues_exactly(tfds_dir, tmp_path, full_run):
    config = _config(tfds_dir)
    full, _ = full_run
    # Interrupted after epoch 1, then resumed in the same workdir.
    interrupted = _config(tfds_dir, **{"train.stop_after_epochs": 1})
    first = supervised.train_and_evaluate(interrupted, str(tmp_path / "resumed"))
    assert first["epochs_done"] == 1
    resumed = supervised.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert int(resumed["state"].step) == int(full["state"].step)
    for a, b in zip(jax.tree.leaves(full["state"].params), jax.tree.leaves(resumed["state"].params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed["after"] == full["after"]


def test_checkpoint_from_another_config_is_refused(tfds_dir, full_run):
    _, workdir = full_run
    other = _config(tfds_dir, **{"optim.lr": 0.123})
    with pytest.raises(errors.ReidError, match="different config"):
        supervised.train_and_evaluate(other, workdir)
    # Run-control keys may change: evaluating with another batch size is accepted.
    ok = _config(tfds_dir, **{"eval.batch_size": 8, "train.log_every_steps": 3})
    assert supervised.evaluate_checkpoint(ok, workdir)["after"]["num_valid_queries"] > 0


def test_nan_loss_stops_with_the_step_and_skips_the_update(tfds_dir, tmp_path):
    config = _config(tfds_dir, **{"loss.label_smoothing": float("nan")})
    with pytest.raises(errors.ReidError, match="NaN or inf at step 0"):
        supervised.train_and_evaluate(config, str(tmp_path / "nan"))


def test_nan_step_leaves_parameters_untouched(tfds_dir):
    config = _config(tfds_dir, **{"loss.label_smoothing": float("nan")})
    mesh = sharding.make_mesh(1)
    train, _, _ = supervised.open_splits(config)
    model, state, tx, lr_fn = supervised.create_state(config, train.num_classes, 4, mesh)
    before = jax.device_get(state.params)
    step = supervised.make_train_step(model, tx, lr_fn, config, mesh)
    idx = samplers.pk_batches(train.labels, train.camera_ids, 4, 2, 0, 0, 1)
    batch = next(pipeline.train_loader(train, idx, 32, 16, 1))
    state, _ = step(state, sharding.to_global(batch, mesh), jax.random.key(0))
    assert int(state.nonfinite_step) == 0
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(state.params))):
        np.testing.assert_array_equal(a, b)
