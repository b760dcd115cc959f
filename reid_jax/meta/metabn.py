"""MetaBN: a BatchNorm neck that mixes meta-test features with meta-train domain statistics.

Zhao et al., "Learning to Generalize Unseen Domains via Memory-based Multi-Source
Meta-Learning for Person Re-Identification" (M3L), CVPR 2021, Sec. 3.3. In meta-train the
neck records, per meta-train domain, the mean and variance of its input; in meta-test it
draws, for each meta-train domain k, features z_k ~ N(mu_k, sigma_k) and mixes them into
the meta-test features, f_k = lam * z_k + (1 - lam) * f with lam ~ Beta(1, 1), then
normalises each mixture with its own batch statistics and the shared affine (official
code HeliosZhao/M3L `reid/models/MetaModules.py`, `MixUpBatchNorm1d`). The official code
passes the variance where the standard deviation belongs (`Normal(meta_mean, meta_var)`);
we use the standard deviation (REFERENCE.md), which also avoids its NaNs at higher lr.

The randomness (lam, the unit normal noise) is an explicit argument: the trainer draws it
from the step's rng, so the module stays a pure function.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# PyTorch BatchNorm1d defaults (Flax momentum convention).
BN_MOMENTUM = 0.9
BN_EPS = 1e-5
# M3L: lam ~ Beta(1, 1) (`np.random.beta(1., 1.)`).
MIX_BETA = 1.0


class MetaBNNeck(nn.Module):
    """BatchNorm1d with MetaBN mixing in meta-test.

    Attributes:
        momentum: running-average momentum (Flax convention).
        epsilon: variance epsilon.
    """

    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPS

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        train: bool,
        mix_stats: tuple[jax.Array, jax.Array] | None = None,
        noise: jax.Array | None = None,
        lam: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Normalises pooled features.

        Args:
            x: [B, C] features.
            train: batch statistics (and running-average update) if True.
            mix_stats: meta-test only: (means [K, C], stds [K, C]) of the K meta-train
                domains' neck inputs.
            noise: [K, B, C] standard normal draws (with ``mix_stats``).
            lam: scalar mixing weight in [0, 1] (with ``mix_stats``).

        Returns:
            (y, batch mean, batch variance): y is [B, C], or [K, B, C] when mixing.
        """
        c = x.shape[-1]
        x = jnp.asarray(x, jnp.promote_types(x.dtype, jnp.float32))
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        if not train:
            y = (x - ra_mean.value) / jnp.sqrt(ra_var.value + self.epsilon)
            return y * scale + bias, ra_mean.value, ra_var.value
        mean = jnp.mean(x, axis=0)
        var = jnp.var(x, axis=0)
        if mix_stats is None:
            if not self.is_initializing():
                m = self.momentum
                ra_mean.value = m * ra_mean.value + (1 - m) * jax.lax.stop_gradient(mean)
                ra_var.value = m * ra_var.value + (1 - m) * jax.lax.stop_gradient(var)
            y = (x - mean) / jnp.sqrt(var + self.epsilon)
            return y * scale + bias, mean, var
        means, stds = mix_stats
        z = means[:, None, :] + stds[:, None, :] * noise  # [K, B, C]
        mixed = lam * z + (1.0 - lam) * x[None]
        m_mean = jnp.mean(mixed, axis=1, keepdims=True)
        m_var = jnp.var(mixed, axis=1, keepdims=True)
        y = (mixed - m_mean) / jnp.sqrt(m_var + self.epsilon)
        return y * scale + bias, mean, var


class M3LNet(nn.Module):
    """A trunk returning pooled 'features', followed by the MetaBN neck (no classifier:
    M3L classifies against its memories).

    Attributes:
        trunk: a module whose ``__call__(x, train)`` returns a dict with 'features' [B, C]
            (a ``ReIDNet`` with ``neck='none', num_classes=0``).
    """

    trunk: nn.Module

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        train: bool,
        mix_stats: tuple[jax.Array, jax.Array] | None = None,
        noise: jax.Array | None = None,
        lam: jax.Array | None = None,
    ) -> dict[str, Any]:
        """Embeds images.

        Returns:
            'features' (pooled, for the triplet loss), 'neck_features' ([B, C] or
            [K, B, C] when mixing; for the memory loss and for retrieval), 'neck_mean' and
            'neck_var' (the neck input's batch statistics), 'logits' None.
        """
        f = self.trunk(x, train)["features"]
        y, mean, var = _Neck(name="neck")(f, train, mix_stats, noise, lam)
        return {"features": f, "neck_features": y, "neck_mean": mean, "neck_var": var,
                "logits": None}


class _Neck(nn.Module):
    """Holds the MetaBN neck as ``neck/bnneck``, the path of a ``ReIDNet``'s BNNeck
    BatchNorm, so that ``model.init_from_run`` carries a supervised run's neck over."""

    @nn.compact
    def __call__(self, *args: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
        """MetaBNNeck's call."""
        return MetaBNNeck(name="bnneck")(*args)

