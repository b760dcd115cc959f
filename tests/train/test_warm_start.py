"""model.init_from_run: weights of an earlier run's newest checkpoint into a new model."""

import jax.numpy as jnp
import numpy as np
import pytest

from reid_jax import checkpoint, errors
from reid_jax.train import state as state_lib
from reid_jax.train import warm_start


def _save_run(workdir, steps=(1, 2)):
    mngr = checkpoint.manager(str(workdir))
    for step in steps:
        params = {"model": {"backbone": {"kernel": jnp.full((2, 3), float(step))},
                            "pcb": {"fc": jnp.full((4,), -float(step))}}}
        stats = {"backbone": {"mean": jnp.full((3,), 10.0 * step)}}
        st = state_lib.TrainState.create(params, stats, ({"mu": jnp.zeros(4)},))
        checkpoint.save(mngr, step, st, {"epoch": step})


def test_copies_shared_weights_keeps_new_ones(tmp_path):
    _save_run(tmp_path)
    params = {"backbone": {"kernel": jnp.zeros((2, 3))}, "pcb": {"fc": jnp.zeros(4)},
              "rpp_classifier": {"kernel": jnp.full((3, 6), 0.5)}}
    stats = {"backbone": {"mean": jnp.zeros(3)}}
    new_params, new_stats, counts = warm_start.load_run(str(tmp_path), params, stats)
    assert counts == {"step": 2, "copied": 3, "kept": 1}  # the newest checkpoint
    np.testing.assert_array_equal(new_params["backbone"]["kernel"], 2.0)
    np.testing.assert_array_equal(new_params["pcb"]["fc"], -2.0)
    np.testing.assert_array_equal(new_stats["backbone"]["mean"], 20.0)
    np.testing.assert_array_equal(new_params["rpp_classifier"]["kernel"], 0.5)
    np.testing.assert_array_equal(params["backbone"]["kernel"], 0.0)  # inputs untouched


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(errors.ReidError, match="no checkpoints/ folder"):
        warm_start.load_run(str(tmp_path / "nothing"), {}, {})
    _save_run(tmp_path)
    bad = {"backbone": {"kernel": jnp.zeros((3, 3))}, "pcb": {"fc": jnp.zeros(4)}}
    with pytest.raises(errors.ReidError, match=r"backbone/kernel has shape \(2, 3\) there and \(3, 3\) here"):
        warm_start.load_run(str(tmp_path), bad, {})
    with pytest.raises(errors.ReidError, match="shares no parameter name"):
        warm_start.load_run(str(tmp_path), {"neck": {"kernel": jnp.zeros(2)}}, {})
