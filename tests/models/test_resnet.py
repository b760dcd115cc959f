"""Tests for reid_jax.models.resnet: shapes, strides, parameter counts, BatchNorm state.

Shape checks use `jax.eval_shape` (tracing only, no compilation) to keep the suite fast
on CPU; numerical checks run one jitted tiny network.
"""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax.models import resnet

TINY = [1, 1, 1, 1]


def _shapes(model, shape=(2, 32, 16, 3)):
    """(variables, output) shapes of init + apply, without running anything."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)

    def run(x):
        variables = model.init(jax.random.key(0), x, train=False)
        return variables, model.apply(variables, x, train=False)

    return jax.eval_shape(run, x)


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(tree))


@pytest.fixture(scope="module")
def tiny18():
    model = resnet.resnet("resnet18", stage_sizes=TINY, width=8)
    x = jax.random.normal(jax.random.key(0), (2, 32, 16, 3))
    # An RBG key: compiling the threefry hash for every parameter dominates CPU test time.
    key = jax.random.key(1, impl="unsafe_rbg")
    variables = jax.jit(lambda x: model.init(key, x, train=False))(x)
    return model, variables, x


@pytest.mark.parametrize(("name", "channels"), [("resnet18", 64), ("resnet50", 256)])
def test_output_shape(name, channels):
    for dtype in (jnp.float32, jnp.bfloat16):
        model = resnet.resnet(name, stage_sizes=TINY, width=8, dtype=dtype)
        variables, y = _shapes(model)
        # 32x16 input: /4 stem, /2 stage 2, /2 stage 3, /1 stage 4 (last stride 1).
        assert y.shape == (2, 2, 1, channels)
        assert y.dtype == dtype
        # Parameters and statistics stay float32 whatever the compute dtype.
        assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(variables))


def test_last_stride_changes_map_size():
    shapes = {}
    for stride in (1, 2):
        model = resnet.resnet("resnet50", stage_sizes=TINY, width=8, last_stride=stride)
        shapes[stride] = _shapes(model, (1, 64, 32, 3))[1].shape
    assert shapes[1] == (1, 4, 2, 256)
    assert shapes[2] == (1, 2, 1, 256)


@pytest.mark.parametrize(
    ("name", "expected"),
    # torchvision parameter counts minus the ImageNet fc layer (2048*1000+1000 and
    # 512*1000+1000): 25,557,032 - 2,049,000 and 11,689,512 - 513,000.
    [("resnet50", 23_508_032), ("resnet18", 11_176_512)],
)
def test_full_depth_parameter_count(name, expected):
    variables, y = _shapes(resnet.resnet(name), (1, 256, 128, 3))
    assert _count(variables["params"]) == expected
    assert y.shape[1:3] == (16, 8)  # BoT: last stride 1 gives a 16x8 map for 256x128


def test_train_updates_batch_stats_and_eval_is_per_sample(tiny18):
    model, variables, x = tiny18
    _, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(
        variables, x
    )
    assert set(updates["batch_stats"]) == set(variables["batch_stats"])
    before = variables["batch_stats"]["bn1"]["mean"]
    after = updates["batch_stats"]["bn1"]["mean"]
    assert not np.allclose(before, after)
    # Eval mode uses running statistics: a sample's output does not depend on the batch.
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    np.testing.assert_allclose(apply(variables, x)[:1], apply(variables, x[:1]), atol=1e-5)


def test_conv_init_is_kaiming_fan_out(tiny18):
    _, variables, _ = tiny18
    assert variables["params"]["layer1_0"]["conv1"]["kernel"].shape == (3, 3, 8, 8)
    # The initializer used for every conv: untruncated normal, variance 2 / fan_out.
    kernel = resnet.conv_init(jax.random.key(0), (3, 3, 64, 64))
    fan_out = 3 * 3 * 64
    np.testing.assert_allclose(np.std(kernel), np.sqrt(2.0 / fan_out), rtol=0.05)
    assert np.max(np.abs(kernel)) > 2.5 * np.sqrt(2.0 / fan_out)  # not truncated at 2 std


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        resnet.resnet("resnet7")
    model = resnet.ResNet(stage_sizes=TINY, block="basic", width=8, norm="gn")
    with pytest.raises(ValueError, match="unknown norm"):
        _shapes(model)


# ----------------------------------------------------------------------------- IBN-Net


def _flat(tree):
    return flax.traverse_util.flatten_dict(tree, sep="/")


def test_ibn_a_placement():
    model = resnet.resnet("resnet50", stage_sizes=[2, 1, 1, 1], width=8, norm="ibn_a")
    variables, _ = _shapes(model)
    params, stats = _flat(variables["params"]), _flat(variables["batch_stats"])
    for block in ("layer1_0", "layer1_1", "layer2_0", "layer3_0"):
        channels = params[f"{block}/conv1/kernel"].shape[-1]
        half = channels // 2
        assert params[f"{block}/bn1/IN/scale"].shape == (half,)
        assert params[f"{block}/bn1/BN/scale"].shape == (channels - half,)
        assert stats[f"{block}/bn1/BN/mean"].shape == (channels - half,)
        assert f"{block}/bn1/IN/mean" not in stats  # InstanceNorm keeps no running stats
    assert "layer4_0/bn1/scale" in params  # stage 4 keeps plain BatchNorm
    assert "bn1/mean" in stats  # and so does the stem


def test_ibn_b_placement():
    model = resnet.resnet("resnet18", stage_sizes=[2, 3, 2, 1], width=8, norm="ibn_b")
    variables, _ = _shapes(model)
    params, stats = _flat(variables["params"]), _flat(variables["batch_stats"])
    assert "bn1/scale" in params and "bn1/mean" not in stats  # InstanceNorm stem
    with_in = {key.split("/")[0] for key in params if key.endswith("/IN/scale")}
    # Last block of stages 1 and 2 only; never the first block of a stage.
    assert with_in == {"layer1_1", "layer2_2"}
    assert params["layer2_2/IN/scale"].shape == (16,)


@pytest.mark.parametrize(
    ("norm", "expected"),
    # IBN-a splits channels, same count as ResNet-50; IBN-b adds the affine
    # InstanceNorms after layer1.2 (2 * 256) and layer2.3 (2 * 512).
    [("ibn_a", 23_508_032), ("ibn_b", 23_508_032 + 2 * 256 + 2 * 512)],
)
def test_ibn_full_depth_parameter_count(norm, expected):
    variables, _ = _shapes(resnet.resnet("resnet50", norm=norm), (1, 64, 32, 3))
    assert _count(variables["params"]) == expected


def _instance_norm_ref(x, eps=1e-5):
    out = np.empty_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[-1]):
            v = x[n, :, :, c]
            out[n, :, :, c] = (v - v.mean()) / np.sqrt(v.var() + eps)
    return out


def _batch_norm_ref(x, eps=1e-5):
    out = np.empty_like(x)
    for c in range(x.shape[-1]):
        v = x[..., c]
        out[..., c] = (v - v.mean()) / np.sqrt(v.var() + eps)
    return out


def test_ibn_module_matches_reference():
    x = np.asarray(jax.random.normal(jax.random.key(0), (3, 4, 2, 5))) * 2.0 + 1.0
    module = resnet.IBN()
    variables = module.init(jax.random.key(1), x, train=False)
    y, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
    # int(5 * 0.5) = 2 instance-normalised channels, 3 batch-normalised ones.
    ref = np.concatenate([_instance_norm_ref(x[..., :2]), _batch_norm_ref(x[..., 2:])], -1)
    np.testing.assert_allclose(y, ref, atol=1e-4)
    assert updates["batch_stats"]["BN"]["mean"].shape == (3,)
    # Eval mode: the instance half still uses per-sample statistics.
    y_eval = module.apply(variables, x, train=False)
    np.testing.assert_allclose(y_eval[..., :2], ref[..., :2], atol=1e-4)


@pytest.mark.parametrize("norm", ["ibn_a", "ibn_b"])
def test_ibn_runs(norm):
    model = resnet.resnet("resnet18", stage_sizes=[2, 2, 1, 1], width=8, norm=norm)
    x = jax.random.normal(jax.random.key(0), (2, 32, 16, 3))
    key = jax.random.key(1, impl="unsafe_rbg")
    y, _ = jax.jit(lambda x: model.init_with_output(key, x, train=False))(x)
    assert y.shape == (2, 2, 1, 64) and np.isfinite(y).all()
