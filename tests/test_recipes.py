"""Recipe cards: every published config agrees with its card; a difference is caught."""

import dataclasses

import pytest

from reid_jax import config_schema, recipes
from reid_jax.recipes import __main__ as cli


def test_every_card_matches_its_config():
    assert recipes.check() == []
    cards = recipes.cards()
    for name in ("bot", "bot_ibn", "agw", "pcb", "ianet", "cluster_contrast", "pplr", "cap",
                 "mmt", "metabin", "m3l"):
        assert any(spec.startswith(f"experiments/{name}.py:") for spec in cards), name
    assert "experiments/pcb.py:rpp-market1501" in cards
    for spec, card in cards.items():
        c = recipes.load_config(spec)
        if c.model.rpp:
            c.model.init_from_run = "runs/pcb"
        config_schema.validate(c)
        assert all(row.source for row in card.rows), spec


def test_an_unexplained_difference_and_a_stale_reason_are_problems(monkeypatch):
    real = recipes.cards()
    card = real["experiments/bot.py:market1501"]
    lr = next(r for r in card.rows if isinstance(r, recipes.Fact) and r.key == "optim.lr")
    changed = dataclasses.replace(card, rows=(
        dataclasses.replace(lr, official=3e-4),
        dataclasses.replace(lr, key="optim.weight_decay", official=5e-4, reason="stale"),
    ))
    monkeypatch.setattr(recipes, "cards", lambda: {card.config: changed})
    problems = recipes.check()
    assert len(problems) == 2
    assert "optim.lr" in problems[0] and "DIFFERENT" in problems[0]
    assert "STALE" in problems[1]
    assert cli.main(["check"]) == 1


def test_show_prints_values_sources_and_verdicts(capsys):
    assert cli.main(["show", "experiments/metabin.py:grid"]) == 0
    out = capsys.readouterr().out
    assert "meta.inner_clamp: ours 'straight_through' | official 'straight_through' [equal]" in out
    assert "model.backbone" in out and "[deliberate:" in out
    assert "bismex/MetaBIN@aa81471" in out
    with pytest.raises(KeyError):
        recipes.show("experiments/bot.py:nope")
