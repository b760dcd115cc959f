"""Tests for reid_jax.models.zoo: ReIDNet outputs and build_model.

Initialisation uses an RBG key: compiling the threefry hash for every parameter would
dominate CPU test time. Pure shape checks use `jax.eval_shape`.
"""

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from reid_jax.models import zoo

TINY = dict(stage_sizes=(1, 1, 1, 1), width=8)


def _images(n=2):
    return jax.random.normal(jax.random.key(0), (n, 32, 16, 3))


def _init(model, x, shapes_only=False):
    def init(x):
        return model.init_with_output(jax.random.key(1, impl="unsafe_rbg"), x, train=False)

    return jax.eval_shape(init, x) if shapes_only else jax.jit(init)(x)


@pytest.mark.parametrize("pooling", ["avg", "gem"])
def test_reid_net_shapes_and_param_names(pooling):
    model = zoo.ReIDNet(backbone="resnet50", pooling=pooling, num_classes=7, **TINY)
    out, variables = _init(model, _images(), shapes_only=True)
    assert out["features"].shape == (2, 256) and out["features"].dtype == jnp.float32
    assert out["neck_features"].shape == (2, 256)
    assert out["logits"].shape == (2, 7)
    paths = flax.traverse_util.flatten_dict(variables["params"], sep="/")
    assert [p for p in paths if "bnneck" in p and "bias" in p] == ["neck/bnneck/bias"]
    assert ("pool/p" in paths) == (pooling == "gem")


def test_reid_net_train_step_values():
    model = zoo.ReIDNet(backbone="resnet50", pooling="gem", num_classes=7, **TINY)
    x = _images(4)
    _, variables = _init(model, x)
    out, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(
        variables, x
    )
    assert set(updates["batch_stats"]) == set(variables["batch_stats"])
    assert not np.allclose(updates["batch_stats"]["neck"]["bnneck"]["mean"], 0.0)
    # Train-mode BNNeck (scale 1, bias 0) standardises each feature over the batch.
    np.testing.assert_allclose(np.mean(out["neck_features"], 0), 0.0, atol=1e-4)
    assert np.isfinite(out["logits"]).all()


def test_neck_none_and_no_classifier():
    model = zoo.ReIDNet(backbone="resnet18", neck="none", **TINY)
    out, variables = _init(model, _images(), shapes_only=True)
    assert out.get("logits") is None
    assert out["features"].shape == out["neck_features"].shape == (2, 64)
    assert "neck" not in variables["params"] and "neck" not in variables["batch_stats"]


def test_bfloat16_returns_float32_features():
    model = zoo.ReIDNet(backbone="resnet18", num_classes=3, dtype=jnp.bfloat16, **TINY)
    out, variables = _init(model, _images())
    assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(variables))
    for key in ("features", "neck_features", "logits"):
        assert out[key].dtype == jnp.float32
        assert np.isfinite(out[key]).all()


def test_build_model_from_config():
    config = ml_collections.ConfigDict(
        dict(
            name="reid_net",
            backbone="resnet18",
            stage_sizes=[1, 1, 1, 1],
            width=8,
            pooling="gem",
            dtype="bfloat16",
            init_from="imagenet",  # keys that are not fields of the model are not read
        )
    )
    model = zoo.build_model(config, num_classes=4)
    assert isinstance(model, zoo.ReIDNet)
    assert model.dtype == jnp.bfloat16 and model.stage_sizes == (1, 1, 1, 1)
    assert model.pooling == "gem" and model.num_classes == 4
    default = zoo.build_model({"backbone": "resnet50", "stage_sizes": ()})
    assert default.backbone == "resnet50" and default.stage_sizes is None
    with pytest.raises(ValueError, match="unknown model"):
        zoo.build_model({"name": "nope"})


def test_cosine_classifier_option():
    model = zoo.ReIDNet(backbone="resnet18", classifier="cosine", num_classes=5, **TINY)
    out, variables = _init(model, _images())
    assert out["logits"].shape == (2, 5)
    assert np.all(np.abs(out["logits"]) <= 1.0 + 1e-5)
    kernel = variables["params"]["neck"]["classifier"]["kernel"]
    f = np.asarray(out["neck_features"])
    ref = (f / np.linalg.norm(f, axis=1, keepdims=True)) @ (
        np.asarray(kernel) / np.linalg.norm(kernel, axis=0, keepdims=True)
    )
    np.testing.assert_allclose(out["logits"], ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unknown classifier"):
        _init(zoo.ReIDNet(classifier="arc", **TINY), _images(), shapes_only=True)
