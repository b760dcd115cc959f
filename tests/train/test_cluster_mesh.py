"""One step of each clustering trainer sharded over 8 devices equals the 1-device step."""

import dataclasses

import jax
import numpy as np
import pytest

from experiments import cap, cluster_contrast, mmt, pplr
from reid_jax import sharding
from reid_jax.data import pipeline, samplers
from reid_jax.train import cluster, supervised

CONFIGS = {"cluster_contrast": cluster_contrast, "pplr": pplr, "cap": cap, "mmt": mmt}
STEPS = {
    "cluster_contrast": cluster.make_contrast_step,
    "pplr": cluster.make_pplr_step,
    "cap": cluster.make_cap_step,
    "mmt": cluster.make_mmt_step,
}


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
    train, _, _ = supervised.open_splits(config)
    unlabeled = dataclasses.replace(
        train, labels=np.full(len(train), -1, np.int32), person_ids=np.full(len(train), -1, np.int32)
    )
    mesh1 = sharding.make_mesh(1)
    model, cs, tx, lr_fn = cluster.create_state(config, len(train), 1, mesh1)
    # Round 1 (the second): PPLR's AALS and CAP's inter-camera loss are active from it.
    # The round runs once; both meshes start from the same host state and batch.
    cs, labels, _ = cluster.pseudo_label_round(
        model, cs, unlabeled, config, mesh1, 1, train.person_ids
    )
    host = jax.device_get(cs)
    idx = samplers.pk_batches(labels, train.camera_ids, config.data.p, config.data.k, 0, 1, 1)
    batch = next(pipeline.train_loader(
        dataclasses.replace(unlabeled, labels=labels), idx, config.data.height,
        config.data.width, 1,
    ))
    out = {}
    for n in (1, 8):
        mesh = sharding.make_mesh(n)
        step = STEPS[method](model, tx, lr_fn, config, mesh)
        new, metrics = step(sharding.replicate(host, mesh), sharding.to_global(batch, mesh),
                            jax.random.key(7))
        out[n] = (jax.device_get(new), jax.device_get(metrics))
    (new1, metrics1), (new8, metrics8) = out[1], out[8]
    assert int(host.train.step) + 1 == int(new1.train.step) == int(new8.train.step)
    state1, state8 = _leaves(new1), _leaves(new8)
    # Parameters, BatchNorm statistics, optimizer moments, memory / EMA teachers.
    assert len(state1) == len(state8)
    for a, b in zip(state1, state8):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert metrics1.keys() == metrics8.keys()
    for key in metrics1:
        np.testing.assert_allclose(metrics1[key], metrics8[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # The step did move the state (the comparison is not between two untouched copies).
    before = _leaves(host)
    assert any(a.shape == b.shape and not np.array_equal(a, b) for a, b in zip(before, state1))
