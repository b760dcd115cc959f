"""Tests for IANet (reid_jax.models.ianet): relations against NumPy, shapes, placement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax.models import ianet, zoo


def _softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _sia_reference(x, patch, ratio):
    """Loop reference: positions (y, x) flattened row-major, zero-padded K x K patches."""
    b, h, w, c = x.shape
    r = patch // 2
    pad = np.zeros((b, h + 2 * r, w + 2 * r, c))
    pad[:, r : r + h, r : r + w] = x
    out = np.zeros((b, h * w, h * w))
    sy, sx = ratio * h, ratio * w
    for n in range(b):
        q = np.zeros((h * w, patch * patch * c))
        for yy in range(h):
            for xx in range(w):
                q[yy * w + xx] = pad[n, yy : yy + patch, xx : xx + patch].reshape(-1)
        sem = _softmax(q @ q.T / np.sqrt(q.shape[1]))
        loc = np.zeros((h * w, h * w))
        for i in range(h * w):
            for j in range(h * w):
                dy, dx = i // w - j // w, i % w - j % w
                loc[i, j] = -(dx**2) / (2 * sx**2) - dy**2 / (2 * sy**2)
        out[n] = _softmax(sem * _softmax(loc))
    return out


@pytest.mark.parametrize("patch", [1, 3])
def test_sia_relation_matches_numpy(patch):
    x = np.random.default_rng(0).normal(size=(2, 4, 3, 5)).astype(np.float32)
    got = ianet.sia_relation(jnp.asarray(x), patch=patch, sigma_ratio=0.625)
    np.testing.assert_allclose(got, _sia_reference(x, patch, 0.625), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got).sum(-1), 1.0, rtol=1e-5)


def test_location_prior_official_widths():
    # Official IA.py on a 32x16 map with alpha_x=10, alpha_y=20: row i is a softmax of
    # -(dx^2 / 200 + dy^2 / 800); check one row by hand.
    prior = np.asarray(ianet.location_prior(32, 16, 0.625 * 32, 0.625 * 16))
    ys, xs = np.divmod(np.arange(512), 16)
    row = _softmax(-((xs - 3) ** 2) / 200.0 - (ys - 5) ** 2 / 800.0)
    np.testing.assert_allclose(prior[5 * 16 + 3], row, rtol=1e-5, atol=1e-9)


def test_cia_relation_matches_numpy():
    x = np.random.default_rng(1).normal(size=(2, 3, 2, 4)).astype(np.float32) * 0.3
    flat = x.reshape(2, 6, 4)
    ref = _softmax(np.einsum("bpc,bpd->bcd", flat, flat))
    np.testing.assert_allclose(ianet.cia_relation(jnp.asarray(x)), ref, rtol=1e-5, atol=1e-6)


def test_ia_block_starts_as_identity_and_trains():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 4, 2, 6)), jnp.float32)
    block = ianet.IABlock(patch=3)
    variables = block.init(jax.random.key(0), x, train=False)
    np.testing.assert_allclose(block.apply(variables, x, train=False), x, atol=1e-6)
    params = dict(variables["params"])
    params["sia_bn"] = {"scale": jnp.ones(6), "bias": jnp.zeros(6)}
    y, _ = block.apply(
        {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
    )
    assert y.shape == x.shape and not np.allclose(y, x)


def test_reidnet_with_ia_blocks_after_stages_2_and_3():
    model = zoo.ReIDNet(
        backbone="resnet18", stage_sizes=(1, 1, 1, 1), width=8, num_classes=3,
        ianet_stages=(2, 3),
    )
    x = jnp.zeros((2, 32, 16, 3))
    variables = model.init(jax.random.key(0), x, train=False)
    backbone = variables["params"]["backbone"]
    assert {"IA_2", "IA_3"} <= set(backbone) and "IA_1" not in backbone
    assert backbone["IA_2"]["sia_bn"]["scale"].shape == (16,)
    assert backbone["IA_3"]["cia_bn"]["scale"].shape == (32,)
    # Same parameter names as the plain ResNet apart from the IA blocks (weights load).
    plain = zoo.ReIDNet(backbone="resnet18", stage_sizes=(1, 1, 1, 1), width=8, num_classes=3)
    plain_vars = plain.init(jax.random.key(0), x, train=False)
    assert set(backbone) - {"IA_2", "IA_3"} == set(plain_vars["params"]["backbone"])
    out = model.apply(variables, x, train=False)
    assert out["features"].shape == (2, 64) and out["logits"].shape == (2, 3)
