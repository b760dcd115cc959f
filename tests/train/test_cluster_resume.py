"""Exact resume of PPLR and MMT: stopped after round 1 and resumed == uninterrupted."""

import json
import os

import jax
import numpy as np
import pytest

from experiments import mmt, pplr
from reid_jax.train import loop

CONFIGS = {"pplr": pplr, "mmt": mmt}


def _records(workdir, prefix):
    """The metrics.jsonl records with keys under ``prefix`` (timings and the input-wait share left out), by step."""
    out = []
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            keep = {k: v for k, v in rec.items() if k.startswith(prefix) and not k.endswith(("_seconds", "_per_second", "_fraction"))}
            if keep:
                out.append((rec["step"], keep))
    return out


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_resume_after_round_one_is_bit_identical(tiny_config, tmp_path, method):
    config = tiny_config(CONFIGS[method])
    full_dir, re_dir = str(tmp_path / "full"), str(tmp_path / "re")
    full = loop.train(config, full_dir)
    assert full["epochs_done"] == 2 and len(full["rounds"]) == 2

    first = loop.train(
        tiny_config(CONFIGS[method], **{"train.stop_after_epochs": 1}), re_dir
    )
    assert first["epochs_done"] == 1 and len(first["rounds"]) == 1
    resumed = loop.train(config, re_dir)
    assert len(resumed["rounds"]) == 1  # only round 2 ran after the restore

    # The whole state: students, BatchNorm statistics, optimizer moments, step, round,
    # number of clusters, PPLR's agreement table / MMT's mean teachers.
    full_leaves = jax.tree.leaves(jax.device_get(full["state"]))
    resumed_leaves = jax.tree.leaves(jax.device_get(resumed["state"]))
    assert len(full_leaves) == len(resumed_leaves)
    for a, b in zip(full_leaves, resumed_leaves):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if method == "mmt":
        assert set(jax.device_get(resumed["state"].teachers["params"])) == {"model", "model2"}
    else:
        assert int(resumed["state"].round) == 1
        assert np.asarray(resumed["state"].agreement).shape[1] == 3

    # Round 2's clustering and every logged training metric, step by step.
    strip = lambda r: {k: v for k, v in r.items() if not k.endswith(("_seconds", "_per_second", "_fraction"))}  # noqa: E731
    assert strip(resumed["rounds"][0]) == strip(full["rounds"][1])
    assert _records(re_dir, "train/") == _records(full_dir, "train/")
    assert _records(re_dir, "cluster/") == _records(full_dir, "cluster/")
    assert resumed["after"] == full["after"]
