"""Tests for reid_jax.models.resnet: shapes, strides, parameter counts, BatchNorm state.

Shape checks use `jax.eval_shape` (tracing only, no compilation) to keep the suite fast
on CPU; numerical checks run one jitted tiny network.
"""

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
