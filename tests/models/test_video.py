"""Video networks: temporal average pooling and temporal attention against NumPy, clips of
one frame equal pictures, TKP's two networks behind its entry points."""

import jax
import numpy as np

from reid_jax.models import video

TINY = dict(backbone="resnet18", stage_sizes=(1, 1, 1, 1), width=8)


def _frames(n, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, 32, 16, 3))


def test_tap_is_the_mean_of_the_frame_features():
    net = video.VideoNet(**TINY, num_classes=3)
    x = _frames(8)
    variables = net.init(jax.random.key(1), x[:1], train=False)
    out = net.apply(variables, x, train=False, clip_len=4)
    frames = np.asarray(out["frame_features"])
    assert frames.shape[:2] == (2, 4)
    np.testing.assert_allclose(out["features"], frames.mean(1), rtol=1e-5, atol=1e-6)
    # each frame's feature is the picture's own (the backbone sees frames one by one)
    single = net.apply(variables, x, train=False, method="images")
    np.testing.assert_allclose(frames.reshape(8, -1), single["features"], rtol=1e-5, atol=1e-6)
    assert out["logits"].shape == (2, 3)


def _np_attention(fmap, p, gen):
    """Gao & Nevatia's TA on [N, T, h, w, C] maps with our parameter layout."""
    n, t, h, w, c = fmap.shape
    k = np.asarray(p["spatial"]["kernel"])  # [h, w, C, D]
    a = np.einsum("nthwc,hwcd->ntd", fmap, k) + np.asarray(p["spatial"]["bias"])
    a = np.maximum(a, 0)
    kt = np.asarray(p["temporal"]["kernel"])  # [3, D, 1]
    padded = np.pad(a, ((0, 0), (1, 1), (0, 0)))
    s = np.stack([sum(padded[:, j + i] @ kt[i, :, 0] for i in range(3)) for j in range(t)], 1)
    s = np.maximum(s + np.asarray(p["temporal"]["bias"])[0], 0)
    if gen == "softmax":
        e = np.exp(s - s.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    sig = 1 / (1 + np.exp(-s))
    return sig / sig.sum(1, keepdims=True)


def test_temporal_attention_against_numpy():
    fmap = np.asarray(jax.random.normal(jax.random.key(0), (2, 5, 4, 2, 6)))
    for gen in ("softmax", "sigmoid"):
        att = video.TemporalAttention(dim=7, gen=gen)
        params = att.init(jax.random.key(1), fmap)["params"]
        w = np.asarray(att.apply({"params": params}, fmap))
        np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(w, _np_attention(fmap, params, gen), rtol=1e-4, atol=1e-6)


def test_attention_pooling_weights_the_frame_features():
    net = video.VideoNet(**TINY, temporal="attention")
    x = _frames(6, seed=2)
    variables = net.init(jax.random.key(3), x[:1], train=False)
    out = net.apply(variables, x, train=False, clip_len=3)
    want = np.einsum("nt,ntc->nc", out["frame_weights"], out["frame_features"])
    np.testing.assert_allclose(out["features"], want, rtol=1e-5, atol=1e-6)


def test_tkp_entry_points_are_its_two_networks():
    net = video.TKPNet(**TINY, num_classes=4)
    x = _frames(8, seed=4)
    variables = net.init(jax.random.key(5), x[:1], train=False)
    assert set(variables["params"]) == {"image_net", "video_net", "classifier"}
    both = net.apply(variables, x, train=False, clip_len=4)
    images = net.apply(variables, x, train=False, method="images")
    clips = net.apply(variables, x, 4, method="clips")
    np.testing.assert_allclose(both["image"]["features"], images["features"], rtol=1e-6)
    np.testing.assert_allclose(both["video"]["features"], clips["features"], rtol=1e-6)
    assert both["image"]["logits"].shape == (8, 4) and both["video"]["logits"].shape == (2, 4)
    # separate weights: the two networks give different features for the same frames
    assert not np.allclose(both["image"]["features"][:4].mean(0), both["video"]["features"][0])
    kernel = variables["params"]["classifier"]["kernel"]
    np.testing.assert_allclose(both["video"]["logits"],
                               both["video"]["neck_features"] @ kernel
                               + variables["params"]["classifier"]["bias"], rtol=1e-4,
                               atol=1e-5)
