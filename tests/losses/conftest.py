"""Shared fixtures for the loss tests."""

import jax
import pytest


@pytest.fixture
def x64():
    """Enables float64 for one test (gradient checks), restoring the previous setting."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
