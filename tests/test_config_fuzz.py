"""Fuzzed command-line overrides: every one either gives a config that builds and trains
a step, or ends in one ``error:`` line with exit status 2, never a traceback.

Overrides are generated from each trainer's declared keys (``config_schema.sections``):
wrong types, out-of-range and non-finite numbers, unknown choices, empty strings,
unknown keys and sections, and in-range values (which must build). They go through the
command line's own parsing (``main.parse_flags`` on a fresh set of flags) and its own
error handling (``main.guarded``). Every accepted override is built (data, network,
state); the first ``STEPS`` accepted per trainer also run a train step (compiling one
per override is what makes the rest too slow for ``make test``; set REID_JAX_FUZZ_STEPS
to step more).
"""

import os
import random

import jax
import pytest
from absl import flags
from ml_collections import config_flags

from reid_jax import config_schema, main, sharding
from reid_jax.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ("bot", "cluster_contrast", "pplr", "cap", "mmt", "metabin", "m3l")  # experiments/
PER_TRAINER = 45  # 7 trainers x 45 = 315 overrides
STEPS = int(os.environ.get("REID_JAX_FUZZ_STEPS", "1"))
# Keys whose in-range values would only make the run slow or point it elsewhere.
NOT_IN_RANGE = {"data.height", "data.width", "data.p", "data.k", "eval.batch_size",
                "data.steps_per_epoch", "data.data_dir", "data.manual_dir", "seed"}


def _bad_values(spec):
    d = spec.default
    if isinstance(d, bool):
        return ["maybe", "2", ""]
    if isinstance(d, int):
        return ["abc", "1.5", "", "-7", "99999999999"]
    if isinstance(d, float):
        return ["abc", "nan", "inf", "", "-1e9", "1e30"]
    if isinstance(d, tuple):
        return ["(", "nope", "", "(1e99,)"]
    if spec.choices:
        return ["nope", "", " "]
    return ["", "/no/such/place"]


def _good_value(spec, rng):
    d = spec.default
    if isinstance(d, bool):
        return str(not d)
    if isinstance(d, int) and spec.low is not None:
        top = min(spec.high if spec.high is not None else d * 2 + 2, d * 2 + 2)
        return str(rng.randint(int(spec.low), max(int(spec.low), int(top))))
    if isinstance(d, float) and spec.low is not None:
        top = min(spec.high if spec.high is not None else d * 2 + 1, d * 2 + 1)
        return repr(rng.uniform(spec.low, max(spec.low, top)))
    if isinstance(d, str) and spec.choices:
        return rng.choice(spec.choices)
    return None


def overrides(trainer, rng):
    """PER_TRAINER generated ``--config.key=value`` arguments for ``trainer``."""
    out = []
    keys = [(f"{s}.{k}" if s else k, spec)
            for s, ks in config_schema.sections(trainer).items() for k, spec in ks.items()
            if (s, k) != ("", "trainer")]
    for path, spec in keys:
        out += [f"--config.{path}={v}" for v in _bad_values(spec)]
        good = _good_value(spec, rng)
        if good is not None and path not in NOT_IN_RANGE:
            out += [f"--config.{path}={good}"] * 2  # weigh the values that must build
    out += ["--config.train.no_such_key=1", "--config.no_such_section.x=1", "--config.=1",
            "--config.optim=1"]
    rng.shuffle(out)
    return out[:PER_TRAINER]


def _parse(argv):
    """The command line's parsing of ``argv`` on fresh flags: (config, overrides)."""
    fv = flags.FlagValues()
    holder = config_flags.DEFINE_config_file("config", None, "config", flag_values=fv,
                                             sys_argv=argv)
    flags.DEFINE_string("workdir", None, "", flag_values=fv)
    main.parse_flags(argv, fv, holder)
    return holder.value, main.command_line_overrides(argv)


def _build_and_step(config, keys, step):
    trainer, ctx = loop.build(config, overrides=keys)
    if step:
        state, batches = loop.host_batches(trainer, config, trainer.state, 0, 1)
        _, metrics = trainer.train_step(state, sharding.to_global(batches[0], ctx.mesh),
                                        jax.random.key(0))
        jax.block_until_ready(metrics["loss"])


@pytest.mark.parametrize("name", CONFIGS)
def test_fuzzed_overrides_build_or_end_in_one_error_line(name, tfds_dir, capsys):
    rng = random.Random(f"fuzz-{name}")
    path = os.path.join(ROOT, "experiments", f"{name}.py")
    base = ["prog", "--config", f"{path}:synthetic_tiny", f"--config.data.data_dir={tfds_dir}",
            "--config.num_devices=1", "--config.train.progress=False"]
    trainer = _parse(base)[0].trainer
    problems, outcomes, stepped = [], {"error": 0, "built": 0, "stepped": 0}, 0
    for arg in overrides(trainer, rng):
        capsys.readouterr()
        argv = [*base, arg]
        try:
            config, keys = _parse(argv)
            step = stepped < STEPS
            main.guarded(lambda config=config, keys=keys, step=step:
                         _build_and_step(config, keys, step))
            stepped += step
            outcomes["stepped" if step else "built"] += 1
        except SystemExit as e:
            err = capsys.readouterr().err
            lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
            if e.code != 2 or len(lines) != 1 or "Traceback" in err:
                problems.append(f"{arg}: exit {e.code}, stderr {err[-600:]!r}")
            else:
                outcomes["error"] += 1
        except Exception as e:  # noqa: BLE001 (a traceback: what this test exists to find)
            problems.append(f"{arg}: {type(e).__name__}: {str(e)[:300]}")
    assert not problems, "\n".join(problems)
    assert outcomes["error"] >= 10 and outcomes["built"] + outcomes["stepped"] >= 1, outcomes
