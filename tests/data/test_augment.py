"""In-step augmentations: shapes, determinism from the rng, and what each op does."""

import jax
import jax.numpy as jnp
import numpy as np

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


def test_augment_batch_is_deterministic_and_normalised():
    imgs = jnp.asarray(np.random.default_rng(0).integers(0, 256, (4, 16, 8, 3)), jnp.uint8)
    cfg = {"flip": 0.5, "pad": 2, "erasing": 0.5, "color_jitter": 0.2}
    a = augment.augment_batch(jax.random.key(0), imgs, cfg)
    b = augment.augment_batch(jax.random.key(0), imgs, cfg)
    c = augment.augment_batch(jax.random.key(1), imgs, cfg)
    assert a.shape == (4, 16, 8, 3) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    plain = augment.augment_batch(jax.random.key(0), imgs, {})
    np.testing.assert_allclose(plain, augment.normalize(imgs), rtol=1e-6)
    ref = (np.asarray(imgs, np.float32) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(plain, ref, rtol=1e-5, atol=1e-5)
