"""The ``kidconsole`` command: the console with no arguments, subcommands otherwise.

Each module of this package that defines ``register(subparsers)`` adds one
subcommand (``kidconsole.cli.g2p`` adds ``g2p`` ...). Subcommand modules import
their heavy parts inside the handler, so ``kidconsole --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from kidconsole import __version__
from kidconsole.errors import KidconsoleError


def default_runs_roots() -> list[str]:
    env = os.environ.get("KIDCONSOLE_RUNS")
    return env.split(os.pathsep) if env else ["runs"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kidconsole",
        description="Adapt a Korean phoneme recogniser to children's speech with LoRA. "
        "With no subcommand, opens the console on the runs root(s).",
    )
    parser.add_argument("--version", action="version", version=f"kidconsole {__version__}")
    parser.add_argument("--runs", action="append", metavar="DIR",
                        help="runs root to watch (repeatable; default $KIDCONSOLE_RUNS or ./runs)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{mod.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from kidconsole.tui.app import run_console

            return run_console(args.runs or default_runs_roots()) or 0
        return args.func(args) or 0
    except KidconsoleError as e:
        print(f"kidconsole: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
