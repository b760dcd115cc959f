"""train/forward.py: running statistics of sequential forwards, computed in parallel."""

import jax.numpy as jnp
import numpy as np

from reid_jax.train import forward


def test_compose_running_stats_equals_sequential_emas():
    rng = np.random.default_rng(0)
    old = {"bn": {"mean": rng.normal(size=4), "var": rng.uniform(0.5, 2, 4)}}
    batch = [{"bn": {"mean": rng.normal(size=4), "var": rng.uniform(0.5, 2, 4)}} for _ in range(5)]
    m = 0.9
    # What each forward returns when started from `old` (Flax: m * old + (1 - m) * b).
    news = {k: {leaf: np.stack([m * old[k][leaf] + (1 - m) * b[k][leaf] for b in batch])
                for leaf in old[k]} for k in old}
    seq = old
    for b in batch:  # the reference: one forward after the other
        seq = {k: {leaf: m * seq[k][leaf] + (1 - m) * b[k][leaf] for leaf in seq[k]} for k in seq}
    got = forward.compose_running_stats(
        {k: {leaf: jnp.asarray(v) for leaf, v in d.items()} for k, d in old.items()},
        {k: {leaf: jnp.asarray(v) for leaf, v in d.items()} for k, d in news.items()}, m)
    for leaf in ("mean", "var"):
        np.testing.assert_allclose(got["bn"][leaf], seq["bn"][leaf], rtol=1e-6)
