"""The ``steadytune`` command: a thin dispatcher over one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` and a ``run(args) -> int``
that it sets as the parser's default. Heavy libraries (torch, ray) are imported
inside ``run`` so that ``steadytune --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Module names under sweeps.cli, in the order `--help` lists them.
SUBCOMMANDS = ("train", "sweep", "resume", "submit", "status", "logs", "stop", "report", "ensemble")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steadytune",
        description="Sweeps for steadier fine-tuning: self-ensemble, self-distillation, "
        "NoisyTune, on Ray Tune.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"sweeps.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from trainer.errors import UserInputError

    try:
        return int(args.run(args) or 0)
    except UserInputError as err:
        print(f"steadytune {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
