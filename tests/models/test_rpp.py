"""Refined part pooling (reid_jax.models.rpp) and ReIDNet(head='pcb', rpp=True)."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax.models import heads, rpp, zoo


def _refined_reference(x, p):
    """g_i = sum_pos p_i f / sum_pos p_i, written out position by position."""
    n, h, w, c = x.shape
    parts = p.shape[-1]
    out = np.zeros((n, parts, c))
    for b in range(n):
        for i in range(parts):
            num, den = np.zeros(c), 0.0
            for y in range(h):
                for z in range(w):
                    num += p[b, y, z, i] * x[b, y, z]
                    den += p[b, y, z, i]
            out[b, i] = num / den
    return out


def _stripe_onehot(height, width, parts):
    """[H, W, P]: row y belongs to stripe y * P // H (H a multiple of P)."""
    rows = np.arange(height) * parts // height
    return np.broadcast_to(np.eye(parts)[rows][:, None, :], (height, width, parts))


def test_refined_pool_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 3, 5)).astype(np.float32)
    logits = rng.normal(size=(2, 6, 3, 4)).astype(np.float32)
    p = np.asarray(jax.nn.softmax(logits, axis=-1))
    got = rpp.refined_pool(jnp.asarray(x), jnp.asarray(p))
    np.testing.assert_allclose(got, _refined_reference(x, p), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("height", [6, 12, 24])
def test_hard_stripe_assignment_is_pcb_pooling(height):
    x = np.random.default_rng(1).normal(size=(3, height, 4, 8)).astype(np.float32)
    p = np.broadcast_to(_stripe_onehot(height, 4, 6), (3, height, 4, 6))
    got = rpp.refined_pool(jnp.asarray(x), jnp.asarray(p))
    np.testing.assert_allclose(got, heads.stripe_pool(jnp.asarray(x), 6), rtol=1e-5, atol=1e-6)


def test_hand_built_part_classifier_reproduces_the_stripes():
    """A classifier that reads a row indicator gives each row to one stripe: RPP == PCB."""
    n, h, w, c, parts = 2, 12, 3, 10, 6
    x = np.random.default_rng(2).normal(size=(n, h, w, c)).astype(np.float32)
    # Channels 0..5 carry a large one-hot of the row's stripe; the classifier reads them.
    x[..., :parts] = 40.0 * _stripe_onehot(h, w, parts)
    kernel = np.zeros((c, parts), np.float32)
    kernel[:parts] = np.eye(parts)
    variables = {"params": {"classifier": {"kernel": kernel, "bias": np.zeros(parts, np.float32)}}}
    logits = rpp.PartClassifier(parts).apply(variables, jnp.asarray(x))
    probs = jax.nn.softmax(logits, axis=-1)
    np.testing.assert_allclose(probs, np.broadcast_to(_stripe_onehot(h, w, parts), probs.shape), atol=1e-12)
    got = rpp.refined_pool(jnp.asarray(x), probs)
    np.testing.assert_allclose(got, heads.stripe_pool(jnp.asarray(x), parts), rtol=1e-5, atol=1e-5)


def _net(rpp_on):
    return zoo.ReIDNet(backbone="resnet50", stage_sizes=(1, 1, 1, 1), width=8, head="pcb",
                       part_dim=16, num_classes=5, rpp=rpp_on)


def test_reid_net_rpp_is_pcb_plus_a_part_classifier():
    x = jax.random.normal(jax.random.key(0), (2, 96, 32, 3))
    pcb_vars = jax.eval_shape(lambda x: _net(False).init(jax.random.key(1), x, train=False), x)
    rpp_vars = jax.eval_shape(lambda x: _net(True).init(jax.random.key(1), x, train=False), x)
    flat_pcb = flax.traverse_util.flatten_dict(pcb_vars["params"])
    flat_rpp = flax.traverse_util.flatten_dict(rpp_vars["params"])
    # Every PCB weight has its place in the RPP model (model.init_from_run copies them).
    for key, value in flat_pcb.items():
        assert flat_rpp[key].shape == value.shape, key
    extra = {k: v.shape for k, v in flat_rpp.items() if k not in flat_pcb}
    assert extra == {("rpp_classifier", "classifier", "kernel"): (256, 6),
                     ("rpp_classifier", "classifier", "bias"): (6,)}


def test_reid_net_rpp_features_are_the_refined_parts():
    model = _net(True)
    x = jax.random.normal(jax.random.key(0), (2, 96, 32, 3))
    variables = model.init(jax.random.key(1), x, train=False)
    out, inter = model.apply(variables, x, train=False, capture_intermediates=True)
    fmap = inter["intermediates"]["backbone"]["__call__"][0]
    probs = out["part_probabilities"]
    assert probs.shape == (2, 6, 2, 6)
    np.testing.assert_allclose(np.sum(probs, -1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out["features"].reshape(2, 6, -1), rpp.refined_pool(fmap, probs),
                               rtol=1e-5, atol=1e-6)
    assert out["neck_features"].shape == (2, 6 * 16) and out["part_logits"].shape == (2, 6, 5)


def test_rpp_needs_the_pcb_head():
    model = zoo.ReIDNet(stage_sizes=(1, 1, 1, 1), width=8, rpp=True)
    with pytest.raises(ValueError, match="head='pcb'"):
        model.init(jax.random.key(0), jnp.zeros((1, 32, 16, 3)), train=False)
