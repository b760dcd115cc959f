"""``python -m reid_jax.recipes show CONFIG`` / ``check`` (see ``reid_jax.recipes``)."""

from __future__ import annotations

import argparse
import sys

from reid_jax import recipes


def main(argv: list[str] | None = None) -> int:
    """Prints a card, or checks every card; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m reid_jax.recipes",
                                     description=recipes.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the card of a published config")
    show.add_argument("config", help="e.g. experiments/metabin.py:grid")
    sub.add_parser("check", help="fail on an unexplained difference")
    sub.add_parser("list", help="the configs that have a card")
    args = parser.parse_args(argv)
    if args.command == "list":
        print("\n".join(sorted(recipes.cards())))
        return 0
    if args.command == "show":
        try:
            print(recipes.show(args.config))
        except KeyError as e:
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 2
        return 0
    problems = recipes.check()
    for p in problems:
        print(p)
    n = len(recipes.cards())
    rows = sum(len(c.rows) for c in recipes.cards().values())
    print(f"{n} recipe cards, {rows} rows: {len(problems)} unexplained difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
