"""Schedules, parameter masks, the backbone learning-rate factor and RPP's held epochs."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from experiments import common
from reid_jax import errors
from reid_jax.train import optim


def _cfg(**kw):
    c = ml_collections.ConfigDict(common.base_config().optim.to_dict())
    c.update(dict(name="adam", lr=1.0, weight_decay=0.0, milestones=(4, 7), warmup_epochs=2,
                  warmup_factor=0.1))
    c.update(kw)
    return c


def test_warmup_then_multistep():
    lr = optim.schedule(_cfg(), steps_per_epoch=10, num_epochs=12)
    got = [float(lr(s)) for s in (0, 10, 20, 39, 40, 69, 70)]
    np.testing.assert_allclose(got, [0.1, 0.55, 1.0, 1.0, 0.1, 0.1, 0.01], rtol=1e-6)


def test_per_epoch_schedule_follows_the_epoch_not_the_step():
    """BoT / CAP / M3L: the scheduler is stepped once per epoch (offset 1: at the epoch's
    start), so the rate is constant within an epoch whatever the epoch's length."""
    lr = optim.schedule(_cfg(schedule_unit="epoch", warmup_factor=0.01), 10, 12)
    # last_epoch = e: warmup factor 0.01 (1 - e/2) + e/2, then x0.1 at 4 and 7.
    want = {0: 0.01, 1: 0.505, 2: 1.0, 3: 1.0, 4: 0.1, 6: 0.1, 7: 0.01}
    for e, v in want.items():
        for step in (0, 3, 999):  # any step: the epoch decides
            np.testing.assert_allclose(float(lr(step, e)), v, rtol=1e-5)
    np.testing.assert_allclose(float(lr(25)), want[2], rtol=1e-6)  # no epoch: step // 10
    shifted = optim.schedule(_cfg(schedule_unit="epoch", warmup_factor=0.01,
                                  schedule_epoch_offset=1), 10, 12)
    for e in (0, 1, 3, 6):
        np.testing.assert_allclose(float(shifted(0, e)), want[e + 1], rtol=1e-5)


def test_epoch_reaches_the_optimizer_through_apply_gradients():
    params = {"model": {"conv": {"kernel": jnp.ones((2, 2))}}}
    tx, lr = optim.make_optimizer(_cfg(name="sgd", momentum=0.0, schedule_unit="epoch",
                                       warmup_epochs=0), params, 10, 12)
    g = jax.tree.map(jnp.ones_like, params)
    u5, _ = tx.update(g, tx.init(params), params, epoch=jnp.int32(5))
    np.testing.assert_allclose(u5["model"]["conv"]["kernel"], -float(lr(0, 5)), rtol=1e-6)
    assert float(lr(0, 5)) == pytest.approx(0.1)


def test_bias_lr_factor_doubles_the_bias_step():
    params = {"model": {"conv": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}}}
    cfg = _cfg(name="sgd", momentum=0.0, warmup_epochs=0, lr=0.5, bias_lr_factor=2.0)
    tx, _ = optim.make_optimizer(cfg, params, 1, 1)
    u, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    np.testing.assert_allclose(u["model"]["conv"]["kernel"], -0.5)
    np.testing.assert_allclose(u["model"]["conv"]["bias"], -1.0)


def test_cosine_ends_at_zero():
    lr = optim.schedule(_cfg(schedule="cosine", warmup_epochs=0), 10, 10)
    assert float(lr(0)) == 1.0 and abs(float(lr(100))) < 1e-6


def test_bnneck_bias_frozen_and_centres_use_their_own_sgd():
    params = {
        "model": {"bnneck": {"bias": jnp.ones(3), "scale": jnp.ones(3)}, "conv": {"kernel": jnp.ones((2, 2))}},
        "center_loss": {"centers": jnp.ones((2, 3))},
    }
    tx, _ = optim.make_optimizer(_cfg(name="sgd", momentum=0.0, warmup_epochs=0), params, 1, 1,
                                 center_weight=0.5, center_lr=0.5)
    grads = {
        "model": {"bnneck": {"bias": jnp.ones(3), "scale": jnp.ones(3)}, "conv": {"kernel": jnp.ones((2, 2))}},
        "center_loss": {"centers": jnp.ones((2, 3))},
    }
    updates, _ = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(new["model"]["bnneck"]["bias"], 1.0)  # frozen
    np.testing.assert_allclose(new["model"]["bnneck"]["scale"], 0.0)  # lr 1
    # centres: grad / center_weight * center_lr = 1 / 0.5 * 0.5 = 1
    np.testing.assert_allclose(new["center_loss"]["centers"], 0.0)


def test_weight_decay_mask_skips_norm_and_bias():
    params = {"model": {"bn": {"scale": jnp.ones(3)}, "conv": {"kernel": jnp.ones((2, 2))}}}
    tx, _ = optim.make_optimizer(
        _cfg(name="sgd", momentum=0.0, warmup_epochs=0, weight_decay=0.1, decay_norm_and_bias=False),
        params, 1, 1,
    )
    zero = {"model": {"bn": {"scale": jnp.zeros(3)}, "conv": {"kernel": jnp.zeros((2, 2))}}}
    updates, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(updates["model"]["bn"]["scale"], 0.0)
    np.testing.assert_allclose(updates["model"]["conv"]["kernel"], -0.1)


def _net_params():
    return {
        "model": {
            "backbone": {"conv": {"kernel": jnp.full((2, 2), 0.5)}, "bn": {"scale": jnp.ones(2)}},
            "pcb": {"fc_kernel": jnp.full((3, 2), -0.2)},
        }
    }


def _grads(params, scale=1.0):
    # Different values per leaf, so that a wrong scaling cannot hide.
    leaves, tree = jax.tree.flatten(params)
    return jax.tree.unflatten(tree, [scale * (i + 1) * jnp.ones_like(x) for i, x in enumerate(leaves)])


def test_defaults_keep_the_optimizer_state_layout():
    """mult 1 and no held epochs add no group: checkpoints of earlier runs still restore."""
    params = {**_net_params(), "center_loss": {"centers": jnp.ones((2, 3))}}
    tx, _ = optim.make_optimizer(_cfg(), params, 2, 2)
    assert set(tx.init(params).inner_states) == {"model", "frozen", "centers"}


def test_backbone_lr_mult_scales_the_backbone_sgd_step():
    params = _net_params()
    cfg = dict(name="sgd", momentum=0.9, warmup_epochs=0, lr=0.05, weight_decay=5e-4)
    tx1, _ = optim.make_optimizer(_cfg(**cfg), params, 1, 1)
    tx01, _ = optim.make_optimizer(_cfg(backbone_lr_mult=0.1, **cfg), params, 1, 1)
    # Plain optax: SGD with momentum on the gradient plus L2 decay (PyTorch's SGD).
    plain = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.05, momentum=0.9))
    s1, s01, sp = tx1.init(params), tx01.init(params), plain.init(params)
    p1 = p01 = params
    for step in range(2):  # the second step also checks the momentum buffers
        g = _grads(params, 1.0 + step)
        u1, s1 = tx1.update(g, s1, params)
        u01, s01 = tx01.update(g, s01, params)
        up, sp = plain.update(g, sp, params)
        for path in (("backbone", "conv", "kernel"), ("backbone", "bn", "scale"), ("pcb", "fc_kernel")):
            get = lambda t, path=path: functools.reduce(lambda n, k: n[k], path, t["model"])  # noqa: E731
            np.testing.assert_allclose(get(u1), get(up), rtol=1e-6)
            factor = 0.1 if path[0] == "backbone" else 1.0
            np.testing.assert_allclose(get(u01), factor * get(up), rtol=1e-6)
        p1, p01 = optax.apply_updates(p1, u1), optax.apply_updates(p01, u01)
    delta1 = p1["model"]["backbone"]["conv"]["kernel"] - params["model"]["backbone"]["conv"]["kernel"]
    delta01 = p01["model"]["backbone"]["conv"]["kernel"] - params["model"]["backbone"]["conv"]["kernel"]
    np.testing.assert_allclose(delta01, 0.1 * delta1, rtol=1e-5)


def test_rpp_classifier_only_epochs_hold_everything_else():
    params = {**_net_params()}
    params["model"]["rpp_classifier"] = {"classifier": {"kernel": jnp.ones((2, 6)), "bias": jnp.zeros(6)}}
    # 2 steps per epoch: steps 0-1 train the part classifier alone; lr x0.1 from step 2.
    cfg = _cfg(name="sgd", momentum=0.9, warmup_epochs=0, lr=1.0, milestones=(1,),
               rpp_classifier_only_epochs=1, backbone_lr_mult=0.1)
    tx, lr = optim.make_optimizer(cfg, params, steps_per_epoch=2, num_epochs=3)
    state = tx.init(params)
    assert set(state.inner_states) == {"model", "frozen", "centers", "backbone", "part_classifier"}
    g = _grads(params)
    p = params
    for step in range(3):
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
        rpp_u = updates["model"]["rpp_classifier"]["classifier"]["kernel"]
        assert np.all(np.asarray(rpp_u) != 0)
        if step < 2:
            for name in ("backbone", "pcb"):
                for leaf in jax.tree.leaves(updates["model"][name]):
                    np.testing.assert_array_equal(leaf, 0.0)
    # Step 2 is the first real step of the held groups: momentum starts empty (no
    # gradient of the held steps accumulated) and the schedule has counted every step.
    g_pcb = g["model"]["pcb"]["fc_kernel"]
    np.testing.assert_allclose(updates["model"]["pcb"]["fc_kernel"], -float(lr(2)) * g_pcb, rtol=1e-6)
    np.testing.assert_allclose(float(lr(2)), 0.1)
    g_conv = g["model"]["backbone"]["conv"]["kernel"]
    np.testing.assert_allclose(updates["model"]["backbone"]["conv"]["kernel"], -0.1 * 0.1 * g_conv, rtol=1e-6)
    np.testing.assert_allclose(p["model"]["pcb"]["fc_kernel"] + 0.1 * g_pcb, params["model"]["pcb"]["fc_kernel"], rtol=1e-6)


def test_rpp_classifier_only_epochs_need_a_part_classifier():
    with pytest.raises(errors.ReidError, match="model.rpp=True"):
        optim.make_optimizer(_cfg(rpp_classifier_only_epochs=1), _net_params(), 2, 2)
