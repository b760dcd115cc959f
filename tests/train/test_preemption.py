"""Step-level checkpoints and preemption: a run stopped mid-epoch (SIGTERM's flag set
during a chosen step) and resumed equals the uninterrupted run bit for bit, for a
supervised, a clustering and a meta-learning trainer."""

import jax
import numpy as np
import pytest

from experiments import bot, cluster_contrast, metabin
from reid_jax import preemption
from reid_jax.train import loop

CONFIGS = {"bot": bot, "cluster_contrast": cluster_contrast, "metabin": metabin}
# MetaBIN's tiny config takes one step an epoch; three put meta steps on both sides of
# the stop.
EXTRA = {"metabin": {"data.steps_per_epoch": 3}}


def _stop_on_call(monkeypatch, n):
    """preemption.agreed returns True on its n-th call (the loop calls it after every
    step inside an epoch and at every epoch end), as if SIGTERM had arrived then."""
    calls = {"n": 0}
    real = preemption.agreed

    def agreed(check=True):
        calls["n"] += 1
        return calls["n"] == n or real(check)

    monkeypatch.setattr(preemption, "agreed", agreed)


def _leaves(result):
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(result["state"]))]


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_preempted_mid_epoch_then_resumed_is_bit_identical(tiny_config, tmp_path, monkeypatch,
                                                           method):
    config = tiny_config(CONFIGS[method], **EXTRA.get(method, {}))
    full = loop.train(config, str(tmp_path / "full"))
    steps = int(full["state"].train.step)
    per_epoch = steps // config.train.num_epochs
    assert per_epoch >= 2, "the tiny config needs two steps per epoch to stop inside one"

    # Stop during epoch 2 after its first step: calls 1..per_epoch are epoch 1's.
    _stop_on_call(monkeypatch, per_epoch + 1)
    with pytest.raises(preemption.Preempted, match=f"step {per_epoch + 1} .*resume"):
        loop.train(config, str(tmp_path / "re"))
    monkeypatch.undo()
    # Resumed with step checkpoints on (a run-control key: same fingerprint).
    again = tiny_config(CONFIGS[method], **EXTRA.get(method, {}),
                        **{"train.checkpoint_every_steps": 1})
    resumed = loop.train(again, str(tmp_path / "re"))
    assert int(resumed["state"].train.step) == steps
    a, b = _leaves(full), _leaves(resumed)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert resumed["after"] == full["after"]
    if method == "cluster_contrast":
        assert resumed["rounds"] == []  # round 2's labels came from the checkpoint
