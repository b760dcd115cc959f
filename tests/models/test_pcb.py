"""Tests for the PCB head (reid_jax.models.heads.PCBHead) and ReIDNet(head='pcb')."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax.models import heads, zoo


def _stripe_reference(x, parts):
    n, h, w, c = x.shape
    out = np.zeros((n, parts, c))
    for i in range(parts):
        start, end = int(np.floor(i * h / parts)), int(np.ceil((i + 1) * h / parts))
        out[:, i] = x[:, start:end].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("height", [12, 6, 2, 7])
def test_stripe_pool_matches_adaptive_pooling(height):
    x = np.random.default_rng(0).normal(size=(2, height, 3, 4)).astype(np.float32)
    got = heads.stripe_pool(jnp.asarray(x), 6)
    np.testing.assert_allclose(got, _stripe_reference(x, 6), rtol=1e-5, atol=1e-6)


def test_pcb_head_reference():
    fmap = np.random.default_rng(1).normal(size=(4, 6, 2, 8)).astype(np.float32)
    head = heads.PCBHead(part_dim=5, num_classes=3)
    variables = head.init(jax.random.key(0), fmap, train=False)
    params = jax.tree_util.tree_map(np.asarray, variables["params"])
    assert params["local_conv"].shape == (6, 8, 5)
    assert params["fc_kernel"].shape == (6, 5, 3) and params["fc_bias"].shape == (6, 3)
    assert variables["batch_stats"]["local_bn"]["mean"].shape == (6, 5)
    out, updates = head.apply(variables, fmap, train=True, mutable=["batch_stats"])

    g = _stripe_reference(fmap, 6)
    h = np.zeros((4, 6, 5))
    logits = np.zeros((4, 6, 3))
    for p in range(6):
        r = g[:, p] @ params["local_conv"][p]
        r = (r - r.mean(0)) / np.sqrt(r.var(0) + 1e-5)  # train-mode BN, scale 1, bias 0
        h[:, p] = np.maximum(r, 0.0)
        logits[:, p] = h[:, p] @ params["fc_kernel"][p] + params["fc_bias"][p]
    np.testing.assert_allclose(out["stripe_features"], g, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["part_features"], h, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["part_logits"], logits, rtol=1e-4, atol=1e-5)
    assert not np.allclose(updates["batch_stats"]["local_bn"]["mean"], 0.0)


def test_reid_net_pcb_outputs():
    model = zoo.ReIDNet(
        backbone="resnet50", stage_sizes=(1, 1, 1, 1), width=8, head="pcb", num_classes=7
    )
    # 96x32 input: a 6x2 final map with last stride 1, one row per stripe.
    x = jax.random.normal(jax.random.key(0), (2, 96, 32, 3))
    out, variables = jax.eval_shape(
        lambda x: model.init_with_output(jax.random.key(1), x, train=False), x
    )
    assert out["part_features"].shape == (2, 6, 256)
    assert out["part_logits"].shape == (2, 6, 7)
    assert out["neck_features"].shape == (2, 6 * 256)
    assert out["features"].shape == (2, 6 * 256)  # 6 stripes x 256 backbone channels
    assert out["logits"] is None
    assert "pcb" in variables["params"] and "neck" not in variables["params"]
    assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(out))
    with pytest.raises(ValueError, match="unknown head"):
        zoo.ReIDNet(head="mgn", stage_sizes=(1, 1, 1, 1), width=8).init(
            jax.random.key(0), x, train=False
        )
