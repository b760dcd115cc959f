"""Schedules and parameter masks."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from reid_jax.train import optim


def _cfg(**kw):
    c = ml_collections.ConfigDict(dict(
        name="adam", lr=1.0, momentum=0.9, weight_decay=0.0, decay_norm_and_bias=True,
        schedule="multistep", milestones=(4, 7), gamma=0.1, warmup_epochs=2,
        warmup_factor=0.1, grad_clip=0.0,
    ))
    c.update(kw)
    return c


def test_warmup_then_multistep():
    lr = optim.schedule(_cfg(), steps_per_epoch=10, num_epochs=12)
    got = [float(lr(s)) for s in (0, 10, 20, 39, 40, 69, 70)]
    np.testing.assert_allclose(got, [0.1, 0.55, 1.0, 1.0, 0.1, 0.1, 0.01], rtol=1e-6)


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
