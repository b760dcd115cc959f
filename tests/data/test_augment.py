"""In-step augmentations: shapes, determinism from the rng, and what each op does."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from reid_jax.data import augment


def _img(h=16, w=8):
    return jnp.asarray(np.random.default_rng(0).random((h, w, 3)), jnp.float32)


def test_flip_is_exact_mirror_or_identity():
    img = _img()
    out = augment.random_flip(jax.random.key(0), img, prob=1.0)
    np.testing.assert_array_equal(out, img[:, ::-1])
    np.testing.assert_array_equal(augment.random_flip(jax.random.key(0), img, prob=0.0), img)


def test_pad_crop_is_a_shifted_window_of_the_padded_image():
    img = _img()
    out = np.asarray(augment.pad_crop(jax.random.key(3), img, pad=2))
    padded = np.pad(np.asarray(img), ((2, 2), (2, 2), (0, 0)))
    found = [
        (dy, dx) for dy in range(5) for dx in range(5)
        if np.array_equal(padded[dy:dy + 16, dx:dx + 8], out)
    ]
    assert found


def test_random_erasing_fills_one_rectangle():
    img = _img(32, 16) + 1.0  # no zeros in the input
    out = np.asarray(augment.random_erasing(jax.random.key(1), img, prob=1.0))
    erased = (out == 0).all(axis=-1)
    assert erased.any()
    ys, xs = np.nonzero(erased)
    box = erased[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert box.all()  # a filled rectangle
    area = box.size / (32 * 16)
    assert 0.02 - 1e-2 <= area <= 0.4 + 1e-2
    np.testing.assert_array_equal(out[~erased], np.asarray(img)[~erased])


def _aug(**kw):
    cfg = common.base_config().aug.to_dict()
    cfg.update(kw)
    return cfg


def test_erasing_draws_as_zhong_et_al():
    """Uniform aspect ratio in [0.3, 3.33], area in [0.02, 0.4], every fitting corner,
    the reference's numbers as fill; statistics over many draws."""
    h, w = 64, 32
    fill = jnp.asarray([7.0, 8.0, 9.0])
    keys = jax.random.split(jax.random.key(0), 2000)
    out = np.asarray(jax.vmap(
        lambda k: augment.random_erasing(k, jnp.zeros((h, w, 3)), 1.0, fill=fill))(keys))
    boxes = (out == [7.0, 8.0, 9.0]).all(-1)
    areas, ratios, tops = [], [], []
    for b in boxes:
        ys, xs = np.nonzero(b)
        hh, ww = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert b.sum() == hh * ww  # one filled rectangle
        areas.append(hh * ww / (h * w))
        ratios.append(hh / ww)
        tops.append(ys.min() + hh == h)  # touching the bottom edge is possible
    areas, ratios = np.array(areas), np.array(ratios)
    assert 0.015 <= areas.min() and areas.max() <= 0.42
    # Uniform in [0.3, 3.33] has median ~1.8 (log-uniform: 1.0); fitting tilts it lower.
    assert np.median(ratios) > 1.3
    assert any(tops)


def test_augment_batch_is_deterministic_and_normalised():
    imgs = jnp.asarray(np.random.default_rng(0).integers(0, 256, (4, 16, 8, 3)), jnp.uint8)
    cfg = _aug(flip=0.5, pad=2, erasing=0.5, color_jitter=0.2)
    a = augment.augment_batch(jax.random.key(0), imgs, cfg)
    b = augment.augment_batch(jax.random.key(0), imgs, cfg)
    c = augment.augment_batch(jax.random.key(1), imgs, cfg)
    assert a.shape == (4, 16, 8, 3) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    plain = augment.augment_batch(jax.random.key(0), imgs, _aug(flip=0.0, pad=0, erasing=0.0))
    np.testing.assert_allclose(plain, augment.normalize(imgs), rtol=1e-6)
    ref = (np.asarray(imgs, np.float32) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(plain, ref, rtol=1e-5, atol=1e-5)
