"""Every config key declared once and validated: defaults, types, ranges, choices, keys
set but unused, unknown keys, and every experiment file held to the strict rule."""

import importlib

import pytest

from reid_jax import config_schema, errors
from reid_jax.train import trainers

EXPERIMENTS = ["bot", "bot_ibn", "agw", "pcb", "ianet", "idver", "apr", "margin",
               "cluster_contrast", "pplr", "cap", "mmt", "metabin", "m3l", "video", "tkp"]


def _args(name, module):
    args = list(getattr(module, "ARGS", ("synthetic", "cuhk01", "market1501")))
    extra = {"pcb": "rpp", "idver": "lsro", "margin": "arcface"}.get(name)
    if extra:
        args += [f"{extra}-{a}" for a in args]
    if name == "margin":
        args += [f"circle-{a}" for a in ("synthetic", "cuhk01", "market1501")]
    return args


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_config_is_valid_with_no_unused_key(name):
    module = importlib.import_module(f"experiments.{name}")
    for arg in _args(name, module):
        c = module.get_config(arg)
        if c.model.rpp:  # RPP refines a PCB run, which the user names
            c.model.init_from_run = "runs/pcb"
        config_schema.validate(c)  # strict: no key differs from its default unless used


@pytest.mark.parametrize("trainer", sorted(trainers.TRAINERS))
def test_defaults_are_valid_and_locked(trainer):
    c = config_schema.defaults(trainer)
    if trainer == "pplr":
        c.model.name = "part_net"
    if trainer == "metabin":
        c.model.norm, c.loss.center_weight = "bin", 0.0
    if trainer == "pairwise":
        c.model.name = "idla"
    if trainer in ("video", "tkp"):
        c.model.name = "video_net" if trainer == "video" else "tkp"
        c.eval.evaluators = ("video",)
    if trainer == "video":
        c.loss.center_weight = 0.0
    config_schema.validate(c)
    with pytest.raises(AttributeError):
        c.data.heigth = 3  # a typo cannot add a key
    assert trainer in config_schema.describe(trainer)


def _bot():
    return importlib.import_module("experiments.bot").get_config("synthetic_tiny")


@pytest.mark.parametrize("key, value, match", [
    ("model.backbone", "resnet7", "choose from"),
    ("data.height", -5, "must be between 16"),
    ("data.p", 0, "must be >= 1"),
    ("optim.lr", float("nan"), "must be between"),
    ("aug.flip", 1.5, "must be between 0.0 and 1.0"),
    ("optim.milestones", (10, -1), "must be >= 0"),
    ("eval.evaluators", ("retrieval", "nope"), "choose from"),
    ("trainer", "foo", "unknown config.trainer 'foo'"),
])
def test_bad_values_name_the_key(key, value, match):
    c = _bot()
    node, _, leaf = key.rpartition(".")
    (c[node] if node else c)[leaf] = value
    with pytest.raises(errors.ReidError, match=match) as e:
        config_schema.validate(c)
    assert str(e.value).startswith(f"config.{key}") or "trainer" in key


def test_a_key_set_but_unused_is_refused_unless_switched_off_by_the_user():
    c = _bot()
    c.optim.momentum = 0.5  # adam has no momentum
    with pytest.raises(errors.ReidError, match="set but not used.*optim.name='sgd'"):
        config_schema.validate(c)
    # The user switched warmup off: the experiment's warmup_factor is not their fault...
    c = _bot()
    c.optim.warmup_factor = 0.01
    c.optim.warmup_epochs = 0
    config_schema.validate(c, overrides={"optim.warmup_epochs"})
    # ...but it is when they set it themselves.
    with pytest.raises(errors.ReidError, match="warmup_factor"):
        config_schema.validate(c, overrides={"optim.warmup_factor", "optim.warmup_epochs"})


def test_sections_of_other_trainers_are_not_keys():
    c = _bot()
    with pytest.raises(AttributeError):
        c.cluster = {"eps": 0.5}
    c.unlock()
    c.cluster = {"eps": 0.5}
    with pytest.raises(errors.ReidError, match="config.cluster is not read by trainer 'supervised'"):
        config_schema.validate(c)


def test_trainer_rules_run_before_work():
    c = _bot()
    c.loss.lsro = False
    c.data.unlabeled = "synthetic_persons/tiny:query"
    c.data.unlabeled_per_batch = 4
    c.loss.triplet_weight = 0.0
    with pytest.raises(errors.ReidError, match="loss.lsro"):
        config_schema.validate(c)
