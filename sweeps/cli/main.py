"""The ``steadytune`` command: a thin dispatcher over one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` and a ``run(args) -> int``
that it sets as the parser's default. Heavy libraries (torch, ray) are imported
inside ``run`` so that ``steadytune --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# Module names under sweeps.cli, in the order `--help` lists them.
SUBCOMMANDS = ("train", "sweep", "resume", "submit", "status", "logs", "stop", "report", "ensemble")
# The source tree's pyproject.toml: the version of a checkout run without being installed.
_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _version() -> str:
    """The installed distribution's version, else the source tree's (``python -m
    sweeps.cli.main`` from a checkout, or a Ray job's uploaded packages), else unknown."""
    try:
        return metadata.version("steadytune")
    except metadata.PackageNotFoundError:
        pass
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        return "unknown"
    try:
        return str(tomllib.loads(_PYPROJECT.read_text())["project"]["version"])
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        return "unknown"


def version_line() -> str:
    """``steadytune 0.1.0 (commit <sha>)``: what a bug report or a result needs to name the
    code that ran; the commit (``-dirty`` with local edits) only when one is known."""
    from trainer.provenance import git_commit

    commit = git_commit()
    return f"steadytune {_version()}" + (f" (commit {commit})" if commit else "")


class _VersionAction(argparse.Action):
    """``--version``, computed only when asked: the git commit costs a subprocess, which
    every other command (and ``--help``) should not pay."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steadytune",
        description="Sweeps for steadier fine-tuning: self-ensemble, self-distillation, "
        "NoisyTune, on Ray Tune.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="print the version (and git commit) and exit"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"sweeps.cli.{name}").register(subparsers)
    return parser


_TERMINATED: list[int] = []  # SIGTERM seen by this command (the exit code says so)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM unwinds the driver like Ctrl-C (locks released, Ray shut down) instead of
    killing it mid-write. A flag, not an exception type, says it was SIGTERM: Ray's
    blocking calls re-raise a handler's exception as a plain KeyboardInterrupt."""
    _TERMINATED.append(signum)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    from trainer.errors import UserInputError

    previous = signal.signal(signal.SIGTERM, _terminate)
    _TERMINATED.clear()
    try:
        return int(args.run(args) or 0)
    except UserInputError as err:
        print(f"steadytune {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        detail = f": {stop}" if str(stop) else ""
        print(f"steadytune {args.command}: interrupted{detail}", file=sys.stderr)
        return 143 if _TERMINATED else 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
