"""Tests for reid_jax.models.non_local and the AGW option of ResNet / ReIDNet."""

import flax
import jax
import jax.numpy as jnp
import numpy as np

from reid_jax.models import non_local, resnet, zoo


def _reference(x, p, eps=1e-5):
    """Loops over positions: y_i = 1/N sum_j <theta_i, phi_j> g_j; z = x + BN(W y)."""
    b, h, w, c = x.shape
    flat = x.reshape(b, h * w, c)

    def conv(t, name):
        return t @ p[name]["kernel"][0, 0] + p[name]["bias"]

    g, theta, phi = conv(flat, "g"), conv(flat, "theta"), conv(flat, "phi")
    n = h * w
    y = np.zeros_like(g)
    for bi in range(b):
        for i in range(n):
            for j in range(n):
                y[bi, i] += theta[bi, i] @ phi[bi, j] * g[bi, j] / n
    wy = conv(y, "W_conv")
    # Eval-mode BatchNorm with running mean 0 and variance 1.
    wy = wy / np.sqrt(1 + eps) * p["W_bn"]["scale"] + p["W_bn"]["bias"]
    return x + wy.reshape(b, h, w, c)


def _randomise(variables, seed=1):
    """Random values for every parameter (the BatchNorm scale starts at 0)."""
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(
        lambda leaf: np.float32(0.5) * rng.normal(size=leaf.shape).astype(np.float32),
        variables["params"],
    )
    return {**variables, "params": params}


def test_identity_at_init_and_reference():
    x = jax.random.normal(jax.random.key(0), (2, 3, 2, 6))
    for inter, expected_inter in ((1, 1), (None, 3)):
        block = non_local.NonLocal(inter_channels=inter)
        variables = block.init(jax.random.key(1, impl="unsafe_rbg"), x, train=False)
        assert variables["params"]["g"]["kernel"].shape == (1, 1, 6, expected_inter)
        np.testing.assert_array_equal(variables["params"]["W_bn"]["scale"], 0.0)
        np.testing.assert_allclose(block.apply(variables, x, train=False), x)
        variables = _randomise(variables)
        params = jax.tree_util.tree_map(np.asarray, variables["params"])
        got = block.apply(variables, x, train=False)
        np.testing.assert_allclose(got, _reference(np.asarray(x), params), rtol=1e-4, atol=1e-4)


def _names(model, shape=(1, 32, 16, 3)):
    def init(x):
        return model.init(jax.random.key(0), x, train=False)

    variables = jax.eval_shape(init, jax.ShapeDtypeStruct(shape, jnp.float32))
    return {k for k in variables["params"] if k.startswith("NL_")}


def test_agw_placement_in_resnet():
    # AGW (0, 2, 3, 0) on stages of 1, 3, 4, 1 blocks: the last 2 of stage 2, last 3 of 3.
    model = resnet.resnet(
        "resnet50", stage_sizes=[1, 3, 4, 1], width=8, non_local=non_local.AGW_NON_LOCAL
    )
    assert _names(model) == {"NL_2_0", "NL_2_1", "NL_3_0", "NL_3_1", "NL_3_2"}
    # Capped at the number of blocks of a stage.
    tiny = resnet.resnet("resnet50", stage_sizes=[1, 1, 1, 1], width=8, non_local=(0, 2, 3, 0))
    assert _names(tiny) == {"NL_2_0", "NL_3_0"}
    assert _names(resnet.resnet("resnet50", stage_sizes=[1, 1, 1, 1], width=8)) == set()


def test_agw_reid_net_runs():
    model = zoo.ReIDNet(
        backbone="resnet50",
        stage_sizes=(1, 2, 3, 1),
        width=8,
        pooling="gem",
        non_local=True,
        num_classes=5,
    )
    x = jax.random.normal(jax.random.key(0), (4, 32, 16, 3))
    key = jax.random.key(1, impl="unsafe_rbg")
    variables = jax.jit(lambda x: model.init(key, x, train=False))(x)
    flat = flax.traverse_util.flatten_dict(variables["params"], sep="/")
    assert {k.split("/")[1] for k in flat if "/NL_" in k} == {
        "NL_2_0",
        "NL_2_1",
        "NL_3_0",
        "NL_3_1",
        "NL_3_2",
    }
    out, _ = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(
        variables, x
    )
    assert out["features"].shape == (4, 256) and out["logits"].shape == (4, 5)
    assert np.isfinite(out["neck_features"]).all()
