"""losses/meta.py against NumPy references: inter-domain triplet, SCT, memory loss."""

import jax
import jax.numpy as jnp
import numpy as np

from reid_jax.losses import meta as meta_losses


def _dist(f):
    return np.sqrt(np.maximum(((f[:, None] - f[None]) ** 2).sum(-1), 1e-12))


def test_inter_domain_triplet_matches_numpy():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(8, 5))
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    domains = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    d = _dist(f)
    losses = []
    for i in range(8):
        # NEW_POS [0, 0, 1]: the other domains' pictures (not the same-domain same id).
        pos = [j for j in range(8) if domains[j] != domains[i]]
        neg = [j for j in range(8) if labels[j] != labels[i] and domains[j] == domains[i]]
        losses.append(np.log1p(np.exp(d[i, pos].max() - d[i, neg].min())))
    got = meta_losses.inter_domain_triplet(jnp.asarray(f), jnp.asarray(labels), jnp.asarray(domains))
    np.testing.assert_allclose(got, np.mean(losses), rtol=1e-5)


def test_scatter_loss_matches_numpy_and_skips_absent_domains():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(6, 4))
    domains = np.array([0, 0, 0, 2, 2, 2])
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    vals = []
    for dom in (0, 2):
        x = fn[domains == dom]
        c = x.mean(0)
        vals.append(np.mean(x @ c / np.linalg.norm(c)))
    got = meta_losses.scatter_loss(jnp.asarray(f), jnp.asarray(domains), 3)
    np.testing.assert_allclose(got, np.mean(vals), rtol=1e-5)
    grad = jax.grad(lambda x: meta_losses.scatter_loss(x, jnp.asarray(domains), 3))(jnp.asarray(f))
    assert np.all(np.isfinite(grad))


def test_memory_loss_uses_only_the_own_domain_and_no_memory_gradient():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(4, 3))
    mem = rng.normal(size=(5, 3))
    mem /= np.linalg.norm(mem, axis=1, keepdims=True)
    cls_dom = np.array([0, 0, 1, 1, 1])
    labels = np.array([2, 3, 4, 2])
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    logits = fn @ mem[2:].T / 0.05
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ref = -np.mean(logp[np.arange(4), labels - 2])
    loss = lambda m: meta_losses.memory_identification_loss(  # noqa: E731
        jnp.asarray(f), jnp.asarray(labels), m, jnp.asarray(cls_dom), jnp.asarray(1))
    np.testing.assert_allclose(loss(jnp.asarray(mem)), ref, rtol=1e-5)
    np.testing.assert_array_equal(jax.grad(loss)(jnp.asarray(mem)), 0.0)
