"""Recipe cards: every published config beside its method's official code, value by value.

A card lists, for one published config (``experiments/bot.py:market1501``, ...), the
official value of each hyper-parameter with its source (repository@commit, file, line or
config key), and each behaviour a config value cannot show (a sampler, a clamp, which
forwards move BatchNorm statistics) with where ours lives. ``show`` prints the config's
effective value beside the official one and marks each row:

- ``equal``: the same value (behaviours: implemented as the official code, tested);
- ``deliberate``: different on purpose; the row says why;
- ``DIFFERENT``: different and unexplained: ``check`` fails on it, and on a stated reason
  whose values have become equal (a stale card).

  python -m reid_jax.recipes show experiments/metabin.py:grid
  python -m reid_jax.recipes check            # every card; exit status 1 on a problem

The official values are facts read from the references (never their code); the
sources cite the lines they were read from.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import ml_collections


@dataclasses.dataclass(frozen=True)
class Fact:
    """An official value of a config key.

    Attributes:
      key: the config key ('optim.lr').
      official: the reference's value, in our key's units.
      source: where it was read (repository@commit path:line, config key or flag).
      reason: why ours differs on purpose ('' when it should be equal).
    """

    key: str
    official: Any
    source: str
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """A behaviour of the official code that no config value shows.

    Attributes:
      what: the behaviour.
      official: what the reference does.
      ours: what reid_jax does, and where (module or test).
      source: where the reference does it.
      reason: why ours differs on purpose ('' when it does the same).
    """

    what: str
    official: str
    ours: str
    source: str
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Card:
    """The recipe card of one published config.

    Attributes:
      config: 'experiments/<file>.py:<arg>'.
      method: the method and its paper.
      reference: the official repository and commit read.
      published: the published numbers the config targets.
      rows: Facts and Behaviours.
    """

    config: str
    method: str
    reference: str
    published: str
    rows: tuple[Fact | Behaviour, ...]


def cards() -> dict[str, Card]:
    """Every card, by config."""
    from reid_jax.recipes import clustering, dg, pairwise, supervised, video

    out: dict[str, Card] = {}
    for module in (supervised, clustering, dg, pairwise, video):
        for card in module.CARDS:
            out[card.config] = card
    return out


def load_config(spec: str) -> ml_collections.ConfigDict:
    """The config of 'experiments/<file>.py:<arg>'."""
    path, _, arg = spec.partition(":")
    name = path.removeprefix("experiments/").removesuffix(".py")
    return importlib.import_module(f"experiments.{name}").get_config(arg or None)


def _value(config: ml_collections.ConfigDict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return tuple(node) if isinstance(node, (list, tuple)) else node


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


def rows(card: Card) -> list[dict[str, str]]:
    """The card's rows with the config's values and each row's status."""
    config = load_config(card.config)
    out = []
    for row in card.rows:
        if isinstance(row, Fact):
            ours = _value(config, row.key)
            same = _same(ours, row.official)
            if same and row.reason:
                status = "STALE: equal, but a reason for a difference is given"
            elif same:
                status = "equal"
            elif row.reason:
                status = f"deliberate: {row.reason}"
            else:
                status = "DIFFERENT"
            out.append({"what": row.key, "ours": repr(ours), "official": repr(row.official),
                        "source": row.source, "status": status})
        else:
            status = f"deliberate: {row.reason}" if row.reason else "equal (behaviour)"
            out.append({"what": row.what, "ours": row.ours, "official": row.official,
                        "source": row.source, "status": status})
    return out


def show(spec: str) -> str:
    """The card of ``spec`` as text."""
    all_cards = cards()
    if spec not in all_cards:
        raise KeyError(f"no recipe card for {spec!r}; cards: {', '.join(sorted(all_cards))}")
    card = all_cards[spec]
    lines = [f"{card.config}: {card.method}", f"reference: {card.reference}",
             f"published: {card.published}", ""]
    for r in rows(card):
        lines.append(f"- {r['what']}: ours {r['ours']} | official {r['official']} "
                     f"[{r['status']}]")
        lines.append(f"    source: {r['source']}")
    return "\n".join(lines)


def check() -> list[str]:
    """Problems over every card: unexplained differences and stale reasons."""
    problems = []
    for spec, card in sorted(cards().items()):
        for r in rows(card):
            if r["status"].startswith(("DIFFERENT", "STALE")):
                problems.append(f"{spec}: {r['what']}: ours {r['ours']}, official "
                                f"{r['official']} ({r['status']}; {r['source']})")
    return problems
