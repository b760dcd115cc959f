"""The trainers, by the name ``config.trainer`` gives them: an explicit dict, no registry.

Each is one module with the same three names:

- ``CONFIG``: the config sections (and keys added to common sections) it reads, declared
  once with their defaults and allowed values (``reid_jax/config_schema.py``);
- ``validate(config)``: its cross-key rules, run before any work;
- ``build(ctx) -> loop.Trainer``: its network, initial state, ``train_step`` and
  per-epoch preparation (``reid_jax/train/loop.py`` runs everything else).

A new method is one new module here plus one line in this dict (and its experiment
config, test and recipe card).
"""

from __future__ import annotations

from types import ModuleType

from reid_jax.train import (
    cap,
    cluster_contrast,
    m3l,
    metabin,
    mmt,
    pairwise,
    pplr,
    supervised,
    tkp,
    video,
)

TRAINERS: dict[str, ModuleType] = {
    "supervised": supervised,
    "cluster_contrast": cluster_contrast,
    "pplr": pplr,
    "cap": cap,
    "mmt": mmt,
    "metabin": metabin,
    "m3l": m3l,
    "pairwise": pairwise,
    "video": video,
    "tkp": tkp,
}
