"""Tests for reid_jax.models.heads: GeM pooling and the BNNeck."""

import flax
import jax
import jax.numpy as jnp
import numpy as np

from reid_jax.models import heads


def _positive_map(shape=(2, 4, 3, 5)):
    return jax.random.uniform(jax.random.key(0), shape, minval=0.1, maxval=2.0)


def test_gem_p1_is_average_pooling():
    x = _positive_map()
    np.testing.assert_allclose(heads.gem_pool(x, p=1.0), np.mean(x, axis=(1, 2)), rtol=1e-6)


def test_gem_large_p_approaches_max_pooling():
    x = _positive_map() / 2.0  # <= 1 so that x^p stays finite in float32
    max_pool = np.max(x, axis=(1, 2))
    # max * (1/HW)^(1/p) <= mean(x^p)^(1/p) <= max: within 2.5% for HW=12 and p=100.
    pooled = heads.gem_pool(x, p=100.0)
    np.testing.assert_allclose(pooled, max_pool, rtol=0.025)
    assert np.all(pooled <= max_pool * (1 + 1e-5))
    assert np.all(np.abs(pooled - max_pool) < np.abs(heads.gem_pool(x, p=10.0) - max_pool))


def test_gem_reference_and_clamp():
    x = np.asarray(_positive_map()) - 1.0  # some negatives, clamped to eps
    ref = np.mean(np.maximum(x, 1e-6) ** 3.0, axis=(1, 2)) ** (1 / 3.0)
    np.testing.assert_allclose(heads.gem_pool(jnp.asarray(x)), ref, rtol=1e-5)


def test_gem_module_learnable_p():
    x = _positive_map()
    module = heads.GeM()
    variables = module.init(jax.random.key(0), x)
    np.testing.assert_allclose(variables["params"]["p"], [3.0])
    np.testing.assert_allclose(module.apply(variables, x), heads.gem_pool(x, 3.0), rtol=1e-6)
    grad = jax.grad(lambda v: jnp.sum(module.apply(v, x)))(variables)
    assert np.isfinite(grad["params"]["p"]).all() and grad["params"]["p"][0] != 0


def test_bnneck_outputs_and_param_names():
    feats = jax.random.normal(jax.random.key(0), (8, 16)) * 3.0 + 1.0
    neck = heads.BNNeck(num_classes=5)
    variables = neck.init(jax.random.key(1), feats, train=False)
    out, updates = neck.apply(variables, feats, train=True, mutable=["batch_stats"])
    assert out["features"].shape == (8, 16) and out["neck_features"].shape == (8, 16)
    assert out["logits"].shape == (8, 5) and out["logits"].dtype == jnp.float32
    np.testing.assert_allclose(out["features"], feats)
    # Training-mode BatchNorm with scale 1, bias 0 standardises each channel.
    np.testing.assert_allclose(np.mean(out["neck_features"], 0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.std(out["neck_features"], 0), 1.0, rtol=1e-3)
    assert not np.allclose(updates["batch_stats"]["bnneck"]["mean"], 0.0)

    flat = flax.traverse_util.flatten_dict(variables["params"], sep="/")
    assert set(flat) == {"bnneck/scale", "bnneck/bias", "classifier/kernel"}
    np.testing.assert_array_equal(flat["bnneck/bias"], 0.0)
    kernel = flat["classifier/kernel"]
    assert kernel.shape == (16, 5)
    assert 0.0003 < np.std(kernel) < 0.003  # normal(std=0.001), BoT


def test_bnneck_without_classifier_or_bn():
    feats = jax.random.normal(jax.random.key(0), (4, 6))
    out, _ = heads.BNNeck(num_classes=0).init_with_output(jax.random.key(1), feats, train=False)
    assert out["logits"] is None
    plain = heads.BNNeck(num_classes=3, use_bn=False)
    out, variables = plain.init_with_output(jax.random.key(1), feats, train=False)
    np.testing.assert_allclose(out["neck_features"], feats)
    assert "batch_stats" not in variables


def test_cosine_classifier():
    feats = jax.random.normal(jax.random.key(0), (4, 6)) * 5.0
    module = heads.CosineClassifier(num_classes=3)
    variables = module.init(jax.random.key(1), feats)
    kernel = np.asarray(variables["params"]["kernel"])
    assert kernel.shape == (6, 3)
    f = np.asarray(feats)
    ref = np.array(
        [
            [
                f[i] @ kernel[:, c] / np.linalg.norm(f[i]) / np.linalg.norm(kernel[:, c])
                for c in range(3)
            ]
            for i in range(4)
        ]
    )
    np.testing.assert_allclose(module.apply(variables, feats), ref, rtol=1e-5, atol=1e-6)
