"""One step of each clustering trainer sharded over 8 devices equals the 1-device step."""

import jax
import numpy as np
import pytest

from experiments import cap, cluster_contrast, mmt, pplr
from reid_jax import sharding
from reid_jax.train import loop

CONFIGS = {"cluster_contrast": cluster_contrast, "pplr": pplr, "cap": cap, "mmt": mmt}


def _config(method, tfds_dir):
    c = CONFIGS[method].get_config("synthetic_tiny")
    c.data.data_dir = tfds_dir
    c.num_devices = 1
    c.eval.before_training = False
    c.data.k = 4  # P x K = 8 images: one per simulated device
    # SGD, as the supervised mesh test: Adam's first step is lr * g / (|g| + eps), so a
    # gradient within rounding of 0 (found: BatchNorm biases in layer4) moves by up to
    # lr either way, while the SGD momentum trace after one step *is* the gradient.
    c.optim.name = "sgd"
    c.optim.lr = 0.05
    return c


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_sharded_cluster_step_matches_single_device(tfds_dir, method):
    assert len(jax.devices()) == 8, "conftest sets 8 simulated CPU devices"
    config = _config(method, tfds_dir)
    trainer, _ = loop.build(config)
    # Round 1 (the second): PPLR's AALS and CAP's inter-camera loss are active from it.
    # The round runs once; both meshes start from the same host state and batch.
    state, batches = loop.host_batches(trainer, config, trainer.state, epoch=1, limit=1)
    host = jax.device_get(state)
    out = {}
    for n in (1, 8):
        config.num_devices = n
        trainer_n, ctx = loop.build(config)
        new, metrics = trainer_n.train_step(
            sharding.replicate(host, ctx.mesh), sharding.to_global(batches[0], ctx.mesh),
            jax.random.key(7),
        )
        out[n] = (jax.device_get(new), jax.device_get(metrics))
    (new1, metrics1), (new8, metrics8) = out[1], out[8]
    assert int(host.train.step) + 1 == int(new1.train.step) == int(new8.train.step)
    state1, state8, before = _leaves(new1), _leaves(new8), _leaves(host)
    # Parameters, BatchNorm statistics, optimizer moments, memory / EMA teachers: the
    # two meshes differ by float rounding only, far less than what the step moved
    # (statistics over each device's shard instead of the whole batch would move them
    # by a sizeable fraction of the step).
    assert len(state1) == len(state8) == len(before)
    for a, b, old in zip(state1, state8, before):
        moved = np.abs(a - old).max() if a.shape == old.shape else 1.0
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=max(1e-5, 0.02 * moved))
    assert metrics1.keys() == metrics8.keys()
    for key in metrics1:
        np.testing.assert_allclose(metrics1[key], metrics8[key], rtol=1e-4, atol=1e-6, err_msg=key)
    # The step did move the state (the comparison is not between two untouched copies).
    assert any(a.shape == b.shape and not np.array_equal(a, b) for a, b in zip(before, state1))
