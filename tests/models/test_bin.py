"""BIN layer: NumPy reference, gate init 1 == BatchNorm, gate naming, clamping, ResNet norm='bin'."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from reid_jax.models import bin as bin_lib
from reid_jax.models import resnet


def _numpy_bin(x, p, g):
    mu_b, var_b = x.mean((0, 1, 2)), x.var((0, 1, 2))
    bn = (x - mu_b) / np.sqrt(var_b + 1e-5) * p["BN"]["scale"] + p["BN"]["bias"]
    mu_i, var_i = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    inorm = (x - mu_i) / np.sqrt(var_i + 1e-5) * p["IN"]["scale"] + p["IN"]["bias"]
    return g * bn + (1 - g) * inorm


def test_bin_matches_numpy_reference():
    x = np.random.default_rng(0).normal(size=(3, 5, 4, 6)).astype(np.float32)
    layer = bin_lib.BIN(use_running_average=False)
    variables = layer.init(jax.random.key(0), x)
    params = jax.tree.map(
        lambda a: a + jax.random.uniform(jax.random.key(1), a.shape), variables["params"]
    )
    params["gate"] = jnp.linspace(0.0, 1.0, 6)
    y, new = layer.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                         mutable=["batch_stats"])
    np.testing.assert_allclose(y, _numpy_bin(x, jax.device_get(params), np.asarray(params["gate"])),
                               rtol=1e-4, atol=1e-4)
    # Only BN keeps running statistics; IN has none.
    assert set(new["batch_stats"]) == {"BN"}


def test_gate_init_one_is_batchnorm():
    x = np.random.default_rng(1).normal(size=(4, 3, 3, 5)).astype(np.float32)
    variables = bin_lib.BIN().init(jax.random.key(0), x)
    np.testing.assert_array_equal(variables["params"]["gate"], np.ones(5))
    y, _ = bin_lib.BIN().apply(variables, x, mutable=["batch_stats"])
    bn_vars = {"params": variables["params"]["BN"], "batch_stats": variables["batch_stats"]["BN"]}
    ref, _ = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5).apply(
        bn_vars, x, mutable=["batch_stats"])
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_gate_mask_and_clamp():
    params = {"a": {"gate": jnp.array([-0.5, 0.5, 1.5]), "scale": jnp.array([-2.0, 3.0])}}
    mask = bin_lib.gate_mask(params)
    assert mask == {"a": {"gate": True, "scale": False}}
    out = bin_lib.clamp_gates(params)
    np.testing.assert_array_equal(out["a"]["gate"], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(out["a"]["scale"], [-2.0, 3.0])


def test_resnet_bin_replaces_every_batchnorm():
    net = resnet.resnet("resnet18", stage_sizes=(1, 1, 1, 1), width=4, norm="bin")
    x = jnp.zeros((2, 32, 16, 3))
    variables = jax.jit(lambda k: net.init(k, x, train=False))(jax.random.key(0))
    flat = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
    gates = [p for p, _ in flat if bin_lib.is_gate_path(p)]
    # stem + 2 per basic block + 3 downsample BNs (stages 2-4).
    assert len(gates) == 1 + 4 * 2 + 3
    out_train, _ = net.apply(variables, x + 1.0, train=True, mutable=["batch_stats"])
    out_eval = net.apply(variables, x + 1.0, train=False)
    assert out_train.shape == out_eval.shape == (2, 2, 1, 32)
