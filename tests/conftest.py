"""Test-wide setup: 8 simulated CPU devices (set before JAX starts) and tiny datasets."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import tempfile  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

# Identical programs (the same tiny train step in several runs) compile once per session.
jax.config.update("jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "reid_jax_xla_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One TFDS data dir for the session; the tiny synthetic dataset is built there once."""
    path = str(tmp_path_factory.mktemp("tfds"))
    from data_builders import registry

    registry.prepare("synthetic_persons/tiny", data_dir=path)
    return path


@pytest.fixture
def tiny_config(tfds_dir: str):
    """``tiny_config(module, arg='synthetic_tiny', **{'section.key': value})``: an
    experiment's tiny config on the session's data dir, one device, no untrained eval."""

    def make(module, arg: str = "synthetic_tiny", **overrides):
        c = module.get_config(arg)
        c.data.data_dir = tfds_dir
        c.num_devices = 1
        c.eval.before_training = False
        for key, value in overrides.items():
            node, leaf = key.rsplit(".", 1)
            c[node][leaf] = value
        return c

    return make


@pytest.fixture
def check_directional_derivatives():
    """``check(f, x, grad, eps, atol)``: ``grad @ d`` equals the central finite difference
    of ``f`` at ``x`` along three random directions ``d`` (relative tolerance 1e-5)."""
    import numpy as np

    def check(f, x, grad, eps: float = 1e-5, atol: float = 1e-9) -> None:
        rng = np.random.default_rng(1)
        for _ in range(3):
            d = rng.normal(size=np.shape(x))
            fd = (f(x + eps * d) - f(x - eps * d)) / (2 * eps)
            np.testing.assert_allclose(fd, np.asarray(grad) @ d, rtol=1e-5, atol=atol)

    return check
