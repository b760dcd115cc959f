"""One initialisation path for every trainer: random, ImageNet weights, or an earlier run.

``model_variables`` turns a config into a network's initial (params, batch_stats):

1. random initialisation from the seed (``model.init``);
2. ``model.init_from``: converted PyTorch ImageNet weights into the backbone
   (``reid_jax.models.load_torch``; BIN layers take the converted BatchNorms into their
   BN half, M3L's trunk is found under ``trunk/backbone``);
3. ``model.init_from_run``: the newest checkpoint of an earlier reid_jax run
   (``load_run``): the backbone by its path under the backbone, the neck and the rest
   by their full path, the identity classifiers only with
   ``model.init_from_run_classifier`` (the same identities). MMT names two runs, one
   per student (``run_index``).

Only weights move: the step, the optimizer state and the epoch start afresh, and the
earlier run's config fingerprint is not compared (the configs differ by design).
Resuming an interrupted run is a different thing: run again in its workdir.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp

from reid_jax import checkpoint, errors
from reid_jax.data import sources
from reid_jax.models import load_torch

CLASSIFIER_LEAVES = ("classifier", "fc_kernel", "fc_bias")  # zoo heads' identity classifiers


def init_runs(config: ml_collections.ConfigDict) -> list[str]:
    """The workdirs named by ``model.init_from_run`` (comma-separated)."""
    return [r.strip() for r in config.model.init_from_run.split(",") if r.strip()]


def check_paths(config: ml_collections.ConfigDict) -> None:
    """Raises ReidError naming a ``model.init_from`` / ``init_from_run`` path that is not there."""
    path = config.model.init_from
    if path and not os.path.exists(os.path.join(path, load_torch.VARIABLES_FILE)) and not (
        os.path.isfile(path) and path.endswith(".npz")
    ):
        raise errors.ReidError(
            f"config.model.init_from = {path!r} holds no converted weights; convert a PyTorch "
            "file first: python -m reid_jax.tools.import_torch --in MODEL.pth --out DIR, "
            "then --config.model.init_from=DIR."
        )
    source = config.data.source
    if source and not init_runs(config):
        raise errors.ReidError(
            f"config.data.source = {source!r}: a domain-adaptation run starts from a model "
            f"trained on {source}; pass --config.model.init_from_run=<that run's workdir>."
        )
    for run in init_runs(config):
        if not os.path.isdir(os.path.join(run, "checkpoints")):
            raise errors.ReidError(
                f"config.model.init_from_run names {run!r}, which holds no checkpoints/ "
                "folder; give the --workdir of a finished run."
            )
        trained_on = run_training_data(run)
        if source and trained_on != sources.spec_string(source, ""):
            raise errors.ReidError(
                f"config.model.init_from_run names {run!r}, trained on {trained_on!r}, but "
                f"config.data.source = {source!r}; give a run trained on the source (or set "
                "--config.data.source to the run's training pictures)."
            )


def run_training_data(workdir: str) -> str | None:
    """The training pictures ('dataset:split,...') of the run in ``workdir``, from its
    config.json; None if it has none."""
    try:
        with open(os.path.join(workdir, "config.json")) as f:
            data = json.load(f)["data"]
        return sources.spec_string(data["train"], data["dataset"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_variables(
    model: nn.Module,
    config: ml_collections.ConfigDict,
    rng: jax.Array,
    load: bool = True,
    run_index: int = 0,
) -> tuple[dict, dict]:
    """The network's initial (params, batch_stats) as the config says.

    Args:
      model: the network.
      config: the run's config (model.init_from, model.init_from_run, data size).
      rng: key of the random initialisation.
      load: False skips the weight files (``--mode=eval``, which restores a checkpoint).
      run_index: which of the ``model.init_from_run`` workdirs (MMT's second student: 1).
    """
    x = jnp.zeros((1, config.data.height, config.data.width, 3), jnp.float32)
    variables = jax.jit(lambda k: model.init(k, x, train=False))(rng)
    params, stats = variables["params"], variables.get("batch_stats", {})
    if not load:
        return params, stats
    if config.model.init_from:
        params, stats = load_torch.load_into(config.model.init_from, params, stats)
    runs = init_runs(config)
    if runs:
        params, stats, counts = load_run(
            runs[run_index], params, stats, config.model.init_from_run_classifier
        )
        print(f"init_from_run: {counts['copied']} arrays from step {counts['step']} of "
              f"{runs[run_index]}, {counts['kept']} kept as initialised")
    return params, stats


def _read_latest(workdir: str) -> tuple[dict, int]:
    """The newest checkpointed network of ``workdir`` ({'params', 'batch_stats'}) and its step."""
    mngr = checkpoint.manager(workdir)
    step = mngr.latest_step()
    if step is None:
        raise errors.ReidError(f"config.model.init_from_run={workdir!r} holds no complete checkpoint.")
    checkpoint.check_format(mngr, step, what=f"config.model.init_from_run={workdir!r}")
    path = os.path.join(os.path.abspath(workdir), "checkpoints", str(step), "state")
    ckpt = ocp.StandardCheckpointer()
    # Restore onto one local device whatever mesh wrote it; the trainer replicates later.
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
        ckpt.metadata(path).item_metadata.tree,
    )
    train = ckpt.restore(path, target)["train"]
    stats = train["batch_stats"]
    if "model2" in train["params"]:  # an MMT run: its first student
        stats = stats["model"]
    return {"params": train["params"]["model"], "batch_stats": stats}, step


def load_run(
    workdir: str,
    params: Mapping[str, Any],
    batch_stats: Mapping[str, Any],
    with_classifier: bool = False,
) -> tuple[dict, dict, dict[str, int]]:
    """Copies the weights of ``workdir``'s newest checkpoint into a freshly initialised model.

    Every backbone of the new model (TKP has two) takes the earlier run's backbone, or,
    from a run with the same networks, its own.

    Args:
      workdir: the earlier run's workdir (it holds ``checkpoints/``).
      params: the new network's parameters; not modified.
      batch_stats: the new network's BatchNorm statistics; not modified.
      with_classifier: also copy identity classifiers (``CLASSIFIER_LEAVES``).

    Returns:
      (params, batch_stats, counts): counts has 'step' (of the checkpoint read), 'copied'
      (leaves taken from it) and 'kept' (leaves left as initialised).

    Raises:
      errors.ReidError: no checkpoint, no backbone weight copied, or a shared leaf whose
        shape differs.
    """
    old, step = _read_latest(workdir)
    src_prefix = load_torch.backbone_prefix(old["params"])
    dst_prefixes = load_torch.backbone_prefixes(params)  # TKP: its two networks' backbones
    n = len(src_prefix)
    # Backbone tensors of the earlier run by (collection, path below its backbone).
    below = {
        (c, *k[n:]): v for c in ("params", "batch_stats")
        for k, v in flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(old[c]))).items()
        if k[:n] == src_prefix
    }
    copied = {"backbone": 0, "other": 0}
    out = []
    for collection, new in (("params", params), ("batch_stats", batch_stats)):
        flat_new = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(new)))
        flat_old = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(old[collection])))
        for key, value in flat_new.items():
            if not with_classifier and any(k in CLASSIFIER_LEAVES for k in key):
                continue
            dst_prefix = next((p for p in dst_prefixes if key[:len(p)] == p), None)
            in_backbone = dst_prefix is not None
            if in_backbone and key in flat_old and len(dst_prefixes) > 1:
                source, tensor = key, flat_old[key]  # the same network of a run like this one
            elif in_backbone:  # by its path below the backbone (a BIN layer takes a BatchNorm)
                try:
                    found = load_torch.source_key(collection, key[len(dst_prefix):], below)
                except KeyError:
                    found = None
                if found is None:
                    continue
                source, tensor = found, below[found]
            elif key in flat_old:
                source, tensor = key, flat_old[key]
            else:
                continue
            if tuple(tensor.shape) != tuple(value.shape):
                raise errors.ReidError(
                    f"config.model.init_from_run={workdir!r}: {'/'.join(source)} has shape "
                    f"{tuple(tensor.shape)} there and {tuple(value.shape)} here; the runs "
                    "need the same architecture (and, for classifiers, identities)."
                )
            flat_new[key] = jnp.asarray(tensor, value.dtype)
            copied["backbone" if in_backbone else "other"] += 1
        out.append(flax.traverse_util.unflatten_dict(flat_new))
    if copied["backbone"] == 0:
        raise errors.ReidError(
            f"config.model.init_from_run={workdir!r} shares no backbone weight with this "
            "model; was it trained with the same backbone and norm?"
        )
    total = len(jax.tree.leaves(params)) + len(jax.tree.leaves(batch_stats))
    n = copied["backbone"] + copied["other"]
    return out[0], out[1], {"step": int(step), "copied": n, "kept": total - n}
