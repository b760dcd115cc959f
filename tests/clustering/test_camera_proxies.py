"""CAP proxies and losses against a NumPy transcription of the reference loop."""

import jax.numpy as jnp
import numpy as np

from reid_jax.clustering import camera_proxies


def test_build_proxies_orders_by_camera_then_cluster():
    labels = np.array([3, 3, 0, -1, 0, 3, 1])
    cams = np.array([1, 0, 1, 0, 0, 1, 1])
    proxy, p_cluster, p_cam = camera_proxies.build_proxies(labels, cams)
    # proxies: (cam0, cl0), (cam0, cl3), (cam1, cl0), (cam1, cl1), (cam1, cl3)
    np.testing.assert_array_equal(p_cam, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(p_cluster, [0, 3, 0, 1, 3])
    np.testing.assert_array_equal(proxy, [4, 1, 2, -1, 0, 4, 3])


def _log_softmax(x):
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def _reference(feats, targets, cams, mem, p_cluster, p_cam, tau, knn):
    """CAPMemory.loss_using_pseudo_percam_proxy, with global proxy indices."""
    feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    intra, inter = 0.0, 0.0
    for cc in np.unique(cams):
        inds = np.where(cams == cc)[0]
        cam_proxies = np.where(p_cam == cc)[0]
        ce = []
        for i in inds:
            logits = feats[i] @ mem[cam_proxies].T / tau
            ce.append(-_log_softmax(logits)[list(cam_proxies).index(targets[i])])
        intra += np.mean(ce)
        assoc = 0.0
        for i in inds:
            sims = feats[i] @ mem.T
            pos = np.where(p_cluster == p_cluster[targets[i]])[0]
            masked = sims.copy()
            masked[pos] = -10000.0
            hard = np.argsort(masked, kind="stable")[-knn:]
            x = np.concatenate([sims[pos], sims[hard]]) / tau
            t = np.zeros(len(x))
            t[: len(pos)] = 1.0 / len(pos)
            assoc += -(t * _log_softmax(x)).sum()
        inter += assoc / len(inds)
    return intra, inter


def test_cap_losses_match_reference_loop():
    rng = np.random.default_rng(0)
    p_cluster = np.array([0, 1, 2, 0, 1, 3, 0, 2], np.int32)
    p_cam = np.array([0, 0, 0, 1, 1, 1, 2, 2], np.int32)
    mem = rng.normal(size=(8, 6))
    mem /= np.linalg.norm(mem, axis=1, keepdims=True)
    targets = np.array([0, 1, 3, 5, 6, 7, 7, 2], np.int32)
    feats = rng.normal(size=(8, 6))
    want = _reference(feats, targets, p_cam[targets], mem, p_cluster, p_cam, 0.07, 3)
    pad = lambda a, v: np.concatenate([a, np.full(2, v, a.dtype)])  # noqa: E731
    got = camera_proxies.cap_losses(
        jnp.asarray(feats, jnp.float32), jnp.asarray(targets),
        jnp.asarray(np.concatenate([mem, np.zeros((2, 6))]), jnp.float32),
        jnp.asarray(pad(p_cluster, -1)), jnp.asarray(pad(p_cam, -1)), 8, 0.07, 3,
    )
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4)
