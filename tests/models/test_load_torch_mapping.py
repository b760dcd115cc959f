"""Tests for reid_jax.models.load_torch that need no PyTorch: names, checks, files."""

import importlib.util

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax import errors
from reid_jax.models import load_torch, zoo
from reid_jax.tools import import_torch

TINY = dict(width=8, stage_sizes=[2, 2, 1, 1])


@pytest.fixture(scope="module")
def shapes():
    return {
        norm: load_torch.resnet_shapes("resnet50", norm=norm, **TINY)
        for norm in ("bn", "ibn_a", "ibn_b")
    }


def _fake_state_dict(target, seed=0):
    """A state_dict in PyTorch layout for every leaf of `target` (plus torch extras)."""
    rng = np.random.default_rng(seed)
    state = {}
    for path, leaf in flax.traverse_util.flatten_dict(target).items():
        shape = tuple(leaf.shape)
        if len(shape) == 4:
            shape = (shape[3], shape[2], shape[0], shape[1])
        state[load_torch.torch_name(path)] = rng.normal(size=shape).astype(np.float32)
        if path[-1] == "mean":
            bn = load_torch.torch_name(path).rsplit(".", 1)[0]
            state[f"{bn}.num_batches_tracked"] = np.array(7)
    state["fc.weight"] = np.zeros((10, 2048), np.float32)
    state["fc.bias"] = np.zeros((10,), np.float32)
    return state


def test_torchvision_names():
    cases = {
        "conv1.weight": ("params", "conv1", "kernel"),
        "bn1.running_var": ("batch_stats", "bn1", "var"),
        "layer3.5.conv2.weight": ("params", "layer3_5", "conv2", "kernel"),
        "layer2.0.downsample.0.weight": ("params", "layer2_0", "downsample_conv", "kernel"),
        "layer2.0.downsample.1.bias": ("params", "layer2_0", "downsample_bn", "bias"),
        "layer1.0.bn1.IN.weight": ("params", "layer1_0", "bn1", "IN", "scale"),
        "layer1.2.IN.bias": ("params", "layer1_2", "IN", "bias"),
        "NL_2.1.W.1.running_mean": ("batch_stats", "NL_2_1", "W_bn", "mean"),
    }
    for name, path in cases.items():
        ndim = 4 if path[-1] == "kernel" else 1
        assert load_torch.flax_path(name, ndim) == path
        assert load_torch.torch_name(path) == name
    assert load_torch.flax_path("fc.weight", 2) is None
    assert load_torch.flax_path("layer1.0.bn1.num_batches_tracked", 0) is None


@pytest.mark.parametrize("norm", ["bn", "ibn_a", "ibn_b"])
def test_round_trip_of_every_leaf(shapes, norm):
    target = shapes[norm]
    for path, leaf in flax.traverse_util.flatten_dict(target).items():
        assert load_torch.flax_path(load_torch.torch_name(path), len(leaf.shape)) == path


def test_convert_transposes_and_drops_extras(shapes):
    state = _fake_state_dict(shapes["bn"])
    variables = load_torch.convert(state, shapes["bn"])
    np.testing.assert_array_equal(
        variables["params"]["conv1"]["kernel"], state["conv1.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        variables["batch_stats"]["layer1_0"]["bn1"]["mean"], state["layer1.0.bn1.running_mean"]
    )
    got = jax.tree_util.tree_map(lambda a: a.shape, variables)
    want = jax.tree_util.tree_map(lambda a: tuple(a.shape), shapes["bn"])
    assert got == want


def test_convert_refuses_mismatches(shapes):
    state = _fake_state_dict(shapes["bn"])
    bad = dict(state, **{"layer1.0.conv2.weight": np.zeros((8, 8, 1, 1), np.float32)})
    with pytest.raises(errors.ReidError, match=r"layer1\.0\.conv2\.weight.*expects \(3, 3, 8, 8\)"):
        load_torch.convert(bad, shapes["bn"])
    extra = dict(state, **{"layer9.0.conv1.weight": np.zeros((1, 1, 1, 1), np.float32)})
    with pytest.raises(errors.ReidError, match="has no place"):
        load_torch.convert(extra, shapes["bn"])
    missing = {k: v for k, v in state.items() if k != "layer4.0.bn3.running_var"}
    with pytest.raises(errors.ReidError, match=r"layer4\.0\.bn3\.running_var"):
        load_torch.convert(missing, shapes["bn"])
    # IBN-a weights into a plain ResNet: refused, not silently half-loaded.
    with pytest.raises(errors.ReidError, match="no place"):
        load_torch.convert(_fake_state_dict(shapes["ibn_a"]), shapes["bn"])
    for error in (bad, extra, missing):
        with pytest.raises(errors.ReidError) as info:
            load_torch.convert(error, shapes["bn"])
        assert "\n" not in str(info.value)


def test_save_load_into_reid_net(tmp_path, shapes):
    variables = load_torch.convert(_fake_state_dict(shapes["bn"]), shapes["bn"])
    load_torch.save(variables, str(tmp_path), {"backbone": "resnet50"})
    model = zoo.ReIDNet(
        backbone="resnet50", stage_sizes=(2, 2, 1, 1), width=8, non_local=True, num_classes=3
    )
    x = jax.ShapeDtypeStruct((1, 64, 32, 3), jnp.float32)
    init = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    params, stats = load_torch.load_into(str(tmp_path), init["params"], init["batch_stats"])
    np.testing.assert_array_equal(
        params["backbone"]["layer2_1"]["conv3"]["kernel"],
        variables["params"]["layer2_1"]["conv3"]["kernel"],
    )
    np.testing.assert_array_equal(
        stats["backbone"]["bn1"]["var"], variables["batch_stats"]["bn1"]["var"]
    )
    # Heads and AGW's non-local blocks keep their initial values.
    assert params["neck"] == init["params"]["neck"]
    assert params["backbone"]["NL_2_0"] == init["params"]["backbone"]["NL_2_0"]
    wrong = zoo.ReIDNet(backbone="resnet50", stage_sizes=(2, 2, 1, 1), width=16)
    init = jax.eval_shape(lambda x: wrong.init(jax.random.key(0), x, train=False), x)
    with pytest.raises(errors.ReidError, match="the model expects"):
        load_torch.load_into(str(tmp_path), init["params"], init["batch_stats"])
    with pytest.raises(errors.ReidError, match="no converted weights"):
        load_torch.load_into(str(tmp_path / "nope"), init["params"], init["batch_stats"])


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_cli_without_torch_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        import_torch.main(["--in", str(tmp_path / "r50.pth"), "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "torch" in err
