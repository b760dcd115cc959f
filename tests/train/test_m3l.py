"""M3L: exact second-order meta-gradient (unrolled and finite differences), first-order
option, MetaBN mixing with the std, memory update, and a two-iteration tiny run."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from data_builders import registry
from experiments import common
from experiments import m3l as m3l_config
from reid_jax import sharding
from reid_jax.data import augment
from reid_jax.meta import memory as memory_lib
from reid_jax.meta import metabn
from reid_jax.train import loop, m3l


class TinyTrunk(nn.Module):
    @nn.compact
    def __call__(self, x, train):
        x = nn.Conv(3, (3, 3), name="conv1")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn1")(x))
        x = nn.Conv(4, (3, 3), strides=(2, 2), name="conv2")(x)
        return {"features": jnp.mean(x, axis=(1, 2))}


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _problem(solver="sgd", first_order=False):
    model = metabn.M3LNet(trunk=TinyTrunk())
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(12, 6, 6, 3)))
    variables = model.init(jax.random.key(0), jnp.asarray(x, jnp.float32), train=False)
    variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables)
    params = {"model": variables["params"]}
    stats = variables["batch_stats"]

    def apply_fn(p, images, **mix):
        out, new = model.apply({"params": p["model"], "batch_stats": stats}, images, train=True,
                               mutable=["batch_stats"], **mix)
        return out, new["batch_stats"]

    labels = jnp.asarray(np.repeat(np.arange(6), 2))
    mem = jnp.asarray(memory_lib.init_from_features(rng.normal(size=(12, 4)), np.asarray(labels), 6),
                      jnp.float64)
    cls_dom = jnp.asarray([0, 0, 1, 1, 2, 2])
    xd, yd = x.reshape(3, 4, 6, 6, 3), labels.reshape(3, 4)
    mtr = (xd[:2], yd[:2], jnp.asarray([0, 1]))
    mte = (xd[2], yd[2], jnp.asarray(2))
    noise = jnp.asarray(rng.normal(size=(2, 4, 4)))
    cfg = common.base_config("m3l").meta
    cfg.inner_solver, cfg.first_order = solver, first_order
    return params, apply_fn, mem, cls_dom, mtr, mte, noise, jnp.asarray(0.3), cfg


def _explicit(params, apply_fn, mem, cls_dom, mtr, mte, noise, lam, cfg, lr, first_order):
    flat, unravel = ravel_pytree(params)

    def l_mtr(v):
        total = 0.0
        for d in range(2):
            out, _ = apply_fn(unravel(v), mtr[0][d])
            total += m3l.domain_loss(out, mtr[1][d], mtr[2][d], mem, cls_dom, cfg)[0]
        return total / 2

    outs = [apply_fn(params, mtr[0][d])[0] for d in range(2)]
    mix = (jnp.stack([o["neck_mean"] for o in outs]), jnp.sqrt(jnp.stack([o["neck_var"] for o in outs])))

    def l_mte(v):
        out, _ = apply_fn(unravel(v), mte[0], mix_stats=mix, noise=noise, lam=lam)
        return m3l.domain_loss(out, mte[1], mte[2], mem, cls_dom, cfg)[0]

    g = jax.grad(l_mtr)(flat)
    adapted = flat - lr * g
    g_te = jax.grad(l_mte)(adapted)
    if first_order:
        return g + g_te
    return g + (jnp.eye(flat.size) - lr * jax.hessian(l_mtr)(flat)).T @ g_te


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_equals_unrolled(x64, first_order):
    problem = _problem("sgd", first_order)
    lr = 0.1
    grad = jax.grad(lambda p: m3l.meta_objective(p, *problem[1:6], lr, *problem[6:])[0])(problem[0])
    explicit = _explicit(*problem, lr, first_order)
    np.testing.assert_allclose(ravel_pytree(grad)[0], explicit, rtol=1e-7, atol=1e-10)


def test_second_order_adam_inner_step_matches_finite_differences(x64, check_directional_derivatives):
    params, *rest = _problem("adam")
    flat, unravel = ravel_pytree(params)

    # MetaBN's recorded statistics carry no gradient (buffers in the official code):
    # hold them at their value at theta for the finite differences too.
    mix = m3l.meta_objective(params, *rest[:5], 1e-2, *rest[5:])[1]["mix"]

    def f(v):
        return m3l.meta_objective(unravel(v), *rest[:5], 1e-2, *rest[5:], fixed_mix=mix)[0]

    check_directional_derivatives(f, flat, jax.grad(f)(flat), eps=1e-6, atol=1e-8)


def test_metabn_mixes_with_std():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    means, variances = rng.normal(size=(2, 3)), rng.uniform(0.5, 4.0, size=(2, 3))
    noise = rng.normal(size=(2, 5, 3))
    neck = metabn.MetaBNNeck()
    variables = neck.init(jax.random.key(0), x, train=False)
    y, _, _ = neck.apply(variables, x, train=True, mix_stats=(means, np.sqrt(variances)),
                         noise=noise, lam=0.25, mutable=["batch_stats"])[0]
    mixed = 0.25 * (means[:, None] + np.sqrt(variances)[:, None] * noise) + 0.75 * x[None]
    ref = (mixed - mixed.mean(1, keepdims=True)) / np.sqrt(mixed.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_memory_update_is_sequential_momentum_and_normalised():
    rng = np.random.default_rng(0)
    mem = memory_lib.init_from_features(rng.normal(size=(6, 4)), np.arange(6) % 3, 3)
    feats = rng.normal(size=(5, 4)).astype(np.float32)
    labels = np.array([0, 2, 0, 0, 1])
    out = np.asarray(memory_lib.update(jnp.asarray(mem), jnp.asarray(feats), jnp.asarray(labels)))
    ref = mem.copy()
    for f, y in zip(feats, labels):
        ref[y] = 0.2 * ref[y] + 0.8 * f / np.linalg.norm(f)
        ref[y] /= np.linalg.norm(ref[y])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def _tiny_config(tfds_dir):
    registry.prepare("synthetic_persons/multidomain_tiny", data_dir=tfds_dir)
    c = m3l_config.get_config("synthetic_tiny")
    c.data.data_dir = tfds_dir
    c.num_devices = 1
    return c


def _first_step(config):
    """(initial state with its memory filled, batch, state after one step, metrics)."""
    trainer, ctx = loop.build(config)
    state = trainer.start(trainer.state)
    state, batches = loop.host_batches(trainer, config, state, 0, 1)
    start = jax.device_get(state)  # the step donates its input state's buffers
    new, metrics = trainer.train_step(state, sharding.to_global(batches[0], ctx.mesh),
                                      jax.random.key(5))
    return trainer, start, batches[0], jax.device_get(new), jax.device_get(metrics)


def test_step_updates_memory_from_the_updated_model(tfds_dir):
    config = _tiny_config(tfds_dir)
    trainer, state, batch, new, metrics = _first_step(config)
    mem0 = np.asarray(state.memory)
    np.testing.assert_allclose(np.linalg.norm(mem0, axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(metrics["loss"]) and np.isfinite(metrics["mte_loss"])
    # Recompute: the step's augmentation, then a forward of the *updated* parameters
    # with the batch statistics the step started from.
    k_aug = jax.random.split(jax.random.fold_in(jax.random.key(5), 0), 4)[0]
    images = augment.augment_batch(k_aug, jnp.asarray(batch["image"]), config.aug.to_dict())
    stats0 = jax.device_get(state.train.batch_stats)
    feats, mem_stats = m3l.memory_features(trainer.model, new.train.params, stats0, images, 3)
    expected = memory_lib.update(jnp.asarray(mem0), feats, jnp.asarray(batch["label"]))
    np.testing.assert_allclose(np.asarray(new.memory), np.asarray(expected), rtol=1e-4, atol=1e-5)
    touched = np.unique(batch["label"])
    untouched = np.setdiff1d(np.arange(mem0.shape[0]), touched)
    np.testing.assert_array_equal(np.asarray(new.memory)[untouched], mem0[untouched])
    assert not np.allclose(np.asarray(new.memory)[touched], mem0[touched])
    # Running statistics moved with every memory forward too, as the official trainer
    # (train mode throughout): the EMA over the meta-train forwards then those three.
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(stats0),
                                                     jax.tree.leaves(new.train.batch_stats)))
    # Undo the three memory forwards' EMA steps: what is left moved from stats0 too
    # (the meta-train forwards), and the memory forwards did count.
    m = 0.9
    undone = jax.tree.map(
        lambda s, o, n: (s - sum(m ** (2 - i) * (n[i] - m * o) for i in range(3))) / m**3,
        new.train.batch_stats, stats0, mem_stats)
    assert any(not np.allclose(a, b, atol=1e-5) for a, b in zip(
        jax.tree.leaves(undone), jax.tree.leaves(stats0)))
    assert any(not np.allclose(a, b, atol=1e-5) for a, b in zip(
        jax.tree.leaves(undone), jax.tree.leaves(new.train.batch_stats)))


def test_two_iteration_tiny_run(tfds_dir, tmp_path):
    result = loop.train(_tiny_config(tfds_dir), str(tmp_path / "run"))
    assert int(result["state"].train.step) == 2
    assert 0.0 <= result["after"]["mAP"] <= 1.0


def test_sharded_step_matches_single_device(tfds_dir):
    assert len(jax.devices()) == 8
    config = _tiny_config(tfds_dir)
    config.data.p = 4
    config.optim.name, config.optim.lr = "sgd", 0.05
    # The one-step-Adam inner update is ~lr * sign(g): it turns float rounding in
    # near-zero gradients into lr-sized differences, so compare with the SGD inner step.
    config.meta.inner_solver = "sgd"
    *_, s1, m1 = _first_step(config)
    config.num_devices = 8
    *_, s8, m8 = _first_step(config)
    np.testing.assert_allclose(m1["loss"], m8["loss"], rtol=1e-4)
    for a, b in zip(jax.tree.leaves(s1.train.params), jax.tree.leaves(s8.train.params)):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(s1.memory, s8.memory, rtol=1e-3, atol=1e-4)
