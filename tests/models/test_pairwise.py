"""The pair networks against independent references: IDLA's neighbourhood differences
(a NumPy loop), its patch summary (a stride-5 convolution of the paper's 60 x 185
arrangement), its parameter count (the paper's), the matching gate (by hand)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax.models import pairwise


def _numpy_differences(f, g, size=5):
    """K[y, x, dy * size + dx, c] = f[y, x, c] - g[y + dy - r, x + dx - r, c], 0 outside g."""
    h, w, c = f.shape
    r = size // 2
    out = np.zeros((h, w, size * size, c), np.float64)
    for y in range(h):
        for x in range(w):
            for dy in range(size):
                for dx in range(size):
                    yy, xx = y + dy - r, x + dx - r
                    inside = 0 <= yy < h and 0 <= xx < w
                    out[y, x, dy * size + dx] = f[y, x] - (g[yy, xx] if inside else 0.0)
    return out


def test_neighbourhood_differences_match_a_loop_both_ways_and_at_borders():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(7, 4, 3)).astype(np.float32)
    g = rng.normal(size=(7, 4, 3)).astype(np.float32)
    k = np.asarray(pairwise.neighbourhood_differences(jnp.asarray(f), jnp.asarray(g)))
    k_rev = np.asarray(pairwise.neighbourhood_differences(jnp.asarray(g), jnp.asarray(f)))
    np.testing.assert_allclose(k, _numpy_differences(f, g), atol=1e-6)
    np.testing.assert_allclose(k_rev, _numpy_differences(g, f), atol=1e-6)
    # A corner position: 16 of its 25 neighbours lie outside g and read 0 -> f itself.
    assert np.allclose(k[0, 0, 0], f[0, 0])
    # Batched input is the same per example.
    kb = pairwise.neighbourhood_differences(jnp.stack([f, g]), jnp.stack([g, f]))
    np.testing.assert_allclose(np.asarray(kb[1]), k_rev, atol=1e-6)


def test_idla_has_the_papers_parameter_count_and_map_sizes():
    model = pairwise.IDLA()
    x = jnp.zeros((2, 160, 60, 3))
    variables = model.init(jax.random.key(0), x)
    assert sum(a.size for a in jax.tree.leaves(variables)) == 2_308_147  # Ahmed et al. Sec. 3
    assert model.apply(variables, x, method="embed").shape == (2, 37, 12, 25)
    out = model.apply(variables, x, jnp.array([0, 1]), jnp.array([1, 0]))
    assert out["pair_logits"].shape == (2, 2)
    logits = np.asarray(out["pair_logits"])
    np.testing.assert_allclose(out["pair_distance"], logits[:, 0] - logits[:, 1], rtol=1e-6)


def test_patch_summary_is_a_stride_5_convolution_of_the_arranged_differences():
    """The paper lays K out as a 60 x 185 map of 5 x 5 blocks and convolves it with 5 x 5
    filters at stride 5; ours contracts each position's (neighbour, channel) block."""
    model = pairwise.IDLA()
    x = jax.random.uniform(jax.random.key(1), (2, 160, 60, 3))
    variables = model.init(jax.random.key(2), x)
    p = variables["params"]["summary"]
    f = model.apply(variables, x, method="embed")
    k = jax.nn.relu(pairwise.neighbourhood_differences(f[0], f[1]))  # [37, 12, 25, 25]
    h, w = k.shape[:2]
    arranged = k.reshape(h, w, 5, 5, 25).transpose(0, 2, 1, 3, 4).reshape(h * 5, w * 5, 25)
    kernel = p["kernel"].reshape(5, 5, 25, 25)  # (dy, dx, in, out)
    conv = jax.lax.conv_general_dilated(
        arranged[None], kernel, (5, 5), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST)[0] + p["bias"]
    ours = model.apply(variables, k, method=lambda m, k: m.summary(k))
    assert arranged.shape == (185, 60, 25)
    np.testing.assert_allclose(ours, conv, rtol=1e-4, atol=1e-4)


def test_matching_gate_by_hand():
    # One pair, 2 rows x 3 columns x 2 channels; summary conv fixed to a plain row sum.
    x1 = np.array([[[1.0, 0.0], [2.0, 1.0], [0.0, 1.0]],
                   [[0.5, 0.5], [0.0, 2.0], [1.0, 0.0]]], np.float32)[None]
    x2 = np.array([[[1.0, 1.0], [2.0, 0.0], [0.5, 1.0]],
                   [[0.5, 0.5], [0.0, 2.0], [1.0, 0.0]]], np.float32)[None]
    gate = pairwise.MatchingGate()
    eye = np.zeros((1, 3, 2, 2), np.float32)
    eye[..., 0, 0] = eye[..., 1, 1] = 1.0  # y_r^i = sum over the row of channel i
    p = np.array([1.0, 2.0], np.float32)
    params = {"summary": {"kernel": eye, "bias": np.zeros(2, np.float32)}, "p": p}
    a1, a2 = gate.apply({"params": params}, x1, x2)
    # Row 0: sums (3, 2) vs (3.5, 2): gates exp(-0.25 / 1), exp(0); row 1 identical: 1.
    y1, y2 = x1.sum(axis=2), x2.sum(axis=2)  # [1, R, C]
    g = np.exp(-((y1 - y2) ** 2) / p**2)[:, :, None, :]
    want1, want2 = x1 * (1 + g), x2 * (1 + g)
    want1 /= np.linalg.norm(want1, axis=-1, keepdims=True)
    want2 /= np.linalg.norm(want2, axis=-1, keepdims=True)
    np.testing.assert_allclose(a1, want1, rtol=1e-5)
    np.testing.assert_allclose(a2, want2, rtol=1e-5)
    assert np.isclose(g[0, 0, 0, 0], np.exp(-0.25)) and np.isclose(g[0, 0, 0, 1], 1.0)
    assert np.allclose(g[0, 1], 1.0)


@pytest.mark.parametrize("size", [(128, 64), (32, 16)])
def test_siamese_baseline_distance_is_the_embeddings_distance(size):
    model = pairwise.GatedSCNN(gate_layers=())
    x = jax.random.uniform(jax.random.key(3), (3, *size, 3))
    variables = model.init(jax.random.key(4), x)
    emb = np.array(model.apply(variables, x, method="embed")).reshape(3, -1)
    assert model.apply(variables, x, method="embed").shape[1:3] == (size[0] // 8, 1)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    out = model.apply(variables, x, jnp.array([0, 0, 1]), jnp.array([1, 2, 2]))
    want = [np.linalg.norm(emb[a] - emb[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
    np.testing.assert_allclose(out["pair_distance"], want, rtol=1e-4)


def test_gated_network_depends_on_the_pair():
    """With gates the feature of a picture changes with the picture it is compared to."""
    model = pairwise.GatedSCNN()
    x = jax.random.uniform(jax.random.key(5), (3, 128, 64, 3))
    variables = model.init(jax.random.key(6), x)
    out = model.apply(variables, x, jnp.array([0, 0]), jnp.array([1, 2]))
    fa = np.asarray(out["features"][0])
    assert np.abs(fa[0] - fa[1]).max() > 1e-4
    assert "gate3" in variables["params"] and variables["params"]["gate3"]["p"].shape == (64,)
