"""The one initialisation path: converted ImageNet weights (model.init_from) and earlier
runs (model.init_from_run) reach the starting parameters of every trainer."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_builders import registry
from experiments import bot, cap, cluster_contrast, m3l, metabin, mmt, pplr, tkp, video
from reid_jax import checkpoint, errors
from reid_jax.models import load_torch
from reid_jax.train import init, loop
from reid_jax.train import state as state_lib

CONFIGS = {
    "supervised": bot, "cluster_contrast": cluster_contrast, "pplr": pplr, "cap": cap,
    "mmt": mmt, "metabin": metabin, "m3l": m3l, "video": video, "tkp": tkp,
}


@pytest.fixture
def config(tiny_config, tfds_dir):
    """``config(trainer, **overrides)``: the trainer's tiny config."""
    registry.prepare("synthetic_persons/multidomain_tiny", data_dir=tfds_dir)
    return lambda trainer, **overrides: tiny_config(CONFIGS[trainer], **overrides)


def _flat(tree):
    return flax.traverse_util.flatten_dict(flax.core.unfreeze(jax.device_get(tree)))


def _nets(trainer, state):
    """{name: (params, batch_stats)} of every network the trainer starts from."""
    st = jax.device_get(state.train)
    if trainer == "mmt":
        return {k: (st.params[k], st.batch_stats[k]) for k in ("model", "model2")}
    if trainer == "tkp":  # both networks start from the weights
        return {k: (st.params["model"][k], st.batch_stats[k])
                for k in ("image_net", "video_net")}
    return {"model": (st.params["model"], st.batch_stats)}


def _below_backbone(params, stats):
    """{(collection, *path below the backbone): array}."""
    prefix = load_torch.backbone_prefix(params)
    out = {}
    for c, tree in (("params", params), ("batch_stats", stats)):
        for k, v in _flat(tree).items():
            if k[:len(prefix)] == prefix:
                out[(c, *k[len(prefix):])] = np.asarray(v)
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Converted 'ImageNet' weights of the tiny ResNet-18 (plain BatchNorm), random values."""
    shapes = load_torch.resnet_shapes("resnet18", width=8, stage_sizes=(1, 1, 1, 1))
    rng = np.random.default_rng(0)
    variables = jax.tree.map(
        lambda s: rng.uniform(0.5, 1.5, s.shape).astype(np.float32), shapes
    )
    out = str(tmp_path_factory.mktemp("imagenet"))
    load_torch.save(variables, out, {"backbone": "resnet18"})
    return out, {k: np.asarray(v) for k, v in _flat(variables).items()}


@pytest.mark.parametrize("trainer", sorted(CONFIGS))
def test_init_from_converted_weights_reaches_the_backbone(trainer, config, converted):
    path, file = converted
    built, _ = loop.build(config(trainer, **{"model.init_from": path}))
    random, _ = loop.build(config(trainer))
    for name, (params, stats) in _nets(trainer, built.state).items():
        got = _below_backbone(params, stats)
        fresh = _below_backbone(*_nets(trainer, random.state)[name])
        for key, value in got.items():
            if key in file:
                np.testing.assert_array_equal(value, file[key], err_msg=f"{name} {key}")
            elif key[-2:-1] == ("BN",):  # MetaBIN: BIN's BatchNorm half takes the BatchNorm
                np.testing.assert_array_equal(value, file[(*key[:-2], key[-1])])
            else:  # BIN's gate and IN affine start fresh (gate 1: a BatchNorm network)
                assert key[-1] == "gate" or "IN" in key, key
                np.testing.assert_array_equal(value, fresh[key])
                if key[-1] == "gate":
                    np.testing.assert_array_equal(value, 1.0)
        assert sum(k in file or k[-2:-1] == ("BN",) for k in got) == len(file)


@pytest.fixture(scope="module")
def source_runs(tfds_dir, tmp_path_factory):
    """Two finished supervised runs with different seeds (MMT's two source models)."""
    runs = []
    for seed in (1, 2):
        c = bot.get_config("synthetic_tiny")
        c.data.data_dir, c.num_devices, c.eval.before_training = tfds_dir, 1, False
        c.train.num_epochs, c.data.steps_per_epoch, c.optim.lr = 1, 1, 0.05
        c.seed = seed
        runs.append(str(tmp_path_factory.mktemp(f"src{seed}")))
        loop.train(c, runs[-1])
    return runs


def _run_weights(workdir):
    mngr = checkpoint.manager(workdir)
    restored = mngr.restore(mngr.latest_step(), args=checkpoint.ocp.args.Composite(
        state=checkpoint.ocp.args.StandardRestore()))["state"]
    return restored["train"]["params"]["model"], restored["train"]["batch_stats"]


@pytest.mark.parametrize("trainer", sorted(CONFIGS))
def test_init_from_run_reaches_the_backbone_and_neck(trainer, config, source_runs):
    runs = source_runs if trainer == "mmt" else source_runs[:1]
    built, _ = loop.build(config(trainer, **{"model.init_from_run": ",".join(runs)}))
    random, _ = loop.build(config(trainer))
    nets = _nets(trainer, built.state)
    sources = runs if trainer == "mmt" else runs * len(nets)  # TKP: both from the one run
    for (name, (params, stats)), run in zip(nets.items(), sources):
        src_params, src_stats = _run_weights(run)
        want = _below_backbone(src_params, src_stats)
        got = _below_backbone(params, stats)
        fresh = _below_backbone(*_nets(trainer, random.state)[name])
        matched = 0
        for key, value in got.items():
            source = (*key[:-2], key[-1]) if key[-2:-1] == ("BN",) else key  # BIN's BN half
            if source in want:
                np.testing.assert_array_equal(value, want[source], err_msg=f"{name} {key}")
                assert not np.array_equal(value, fresh[key]) or key[-1] == "var", key
                matched += 1
        assert matched == len(want)
        if trainer == "tkp":  # its necks sit below its networks: only backbones are shared
            continue
        # The neck's BatchNorm too (M3L's MetaBN neck sits at the same path); the
        # classifier is not copied by default (other identities).
        neck = _flat(params)[("neck", "bnneck", "scale")]
        np.testing.assert_array_equal(neck, _flat(src_params)[("neck", "bnneck", "scale")])
        if ("neck", "classifier", "kernel") in _flat(params):
            assert not np.array_equal(_flat(params)[("neck", "classifier", "kernel")][:, :2],
                                      _flat(src_params)[("neck", "classifier", "kernel")][:, :2])


def test_mmt_students_start_from_their_own_source_runs(config, source_runs):
    built, _ = loop.build(config("mmt", **{"model.init_from_run": ",".join(source_runs)}))
    nets = _nets("mmt", built.state)
    a, b = (_below_backbone(*nets[k]) for k in ("model", "model2"))
    assert any(not np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(errors.ReidError, match="two source runs"):
        loop.build(config("mmt", **{"model.init_from_run": source_runs[0]}))


def _save(workdir, steps=(1, 2)):
    mngr = checkpoint.manager(str(workdir))
    for step in steps:
        params = {"model": {"backbone": {"kernel": jnp.full((2, 3), float(step))},
                            "pcb": {"fc": jnp.full((4,), -float(step))}}}
        stats = {"backbone": {"mean": jnp.full((3,), 10.0 * step)}}
        st = state_lib.State(state_lib.TrainState.create(params, stats, ({"mu": jnp.zeros(4)},)))
        checkpoint.save(mngr, step, st, {"epoch": step})


def test_load_run_copies_shared_weights_keeps_new_ones(tmp_path):
    _save(tmp_path)
    params = {"backbone": {"kernel": jnp.zeros((2, 3))}, "pcb": {"fc": jnp.zeros(4)},
              "rpp_classifier": {"kernel": jnp.full((3, 6), 0.5)}}
    stats = {"backbone": {"mean": jnp.zeros(3)}}
    new_params, new_stats, counts = init.load_run(str(tmp_path), params, stats)
    assert counts == {"step": 2, "copied": 3, "kept": 1}  # the newest checkpoint
    np.testing.assert_array_equal(new_params["backbone"]["kernel"], 2.0)
    np.testing.assert_array_equal(new_params["pcb"]["fc"], -2.0)
    np.testing.assert_array_equal(new_stats["backbone"]["mean"], 20.0)
    np.testing.assert_array_equal(new_params["rpp_classifier"]["kernel"], 0.5)
    np.testing.assert_array_equal(params["backbone"]["kernel"], 0.0)  # inputs untouched


def test_load_run_errors_name_the_problem(tmp_path):
    _save(tmp_path)
    bad = {"backbone": {"kernel": jnp.zeros((3, 3))}, "pcb": {"fc": jnp.zeros(4)}}
    with pytest.raises(errors.ReidError, match=r"kernel has shape \(2, 3\) there and \(3, 3\) here"):
        init.load_run(str(tmp_path), bad, {})
    with pytest.raises(errors.ReidError, match="shares no backbone weight"):
        init.load_run(str(tmp_path), {"backbone": {"other": jnp.zeros(2)}}, {})
    config = bot.get_config("synthetic_tiny")
    config.model.init_from_run = str(tmp_path / "nothing")
    with pytest.raises(errors.ReidError, match="holds no checkpoints/ folder"):
        init.check_paths(config)
