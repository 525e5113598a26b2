"""The ``kidconsole`` command: the console with no arguments, subcommands otherwise.

Each module of this package that defines ``register(parser)`` is the subcommand
of its name (``kidconsole.cli.g2p`` is ``g2p`` ...): ``HELP`` is its line in
``kidconsole --help``, ``DESCRIPTION`` heads its own ``--help``, and ``register``
adds its arguments to the parser made from them here. Subcommand modules import
their heavy parts inside the handler, so ``kidconsole --help`` stays fast.

Flags shared by several commands are defined once: ``--runs`` (global: it may
come before the subcommand's name or after it) and where and in which format a
command writes its output, here; ``--no-progress`` (every long command) and the
model a command decodes with and where it runs (transcribe, serve, select,
pseudo) in ``kidconsole.job_arguments``, with the arguments of the jobs that run
as ``python -m trainers.X``: the trainers parse them too, and import that light
module, never this package.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from kidconsole import __version__
from kidconsole.errors import KidconsoleError
from kidconsole.job_arguments import (  # noqa: F401 (the flags every command shares)
    add_model_arguments, add_progress_flag, add_scoring_flags, show_progress,
)
from kidconsole.runs.evalcost import EVAL_SHARE_WARN
from kidconsole.shown import visible


def default_runs_roots() -> list[str]:
    env = os.environ.get("KIDCONSOLE_RUNS")
    return env.split(os.pathsep) if env else ["runs"]


RUNS_HELP = "runs root (repeatable; default $KIDCONSOLE_RUNS or ./runs)"
_SUB_RUNS = "runs_after_command"


def add_runs_flag(parser: argparse.ArgumentParser) -> None:
    """``--runs DIR`` on a subcommand, adding to the roots given before the subcommand's name.

    argparse copies every value a sub-parser holds, defaults included, over the
    parent's, so a plain ``--runs`` here would make ``kidconsole --runs DIR run ls``
    forget DIR. Under its own name and without a default it never overwrites;
    ``parse_args`` joins the two."""
    parser.add_argument("--runs", action="append", metavar="DIR", dest=_SUB_RUNS, default=argparse.SUPPRESS,
                        help=RUNS_HELP)


def add_output_flags(parser: argparse.ArgumentParser, formats: tuple[str, ...], otherwise: str) -> None:
    """``-o FILE`` and ``--format``, by default the format FILE's suffix names (transcribe, report)."""
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    parser.add_argument("--format", choices=formats,
                        help=f"output format (default: from -o's suffix, else {otherwise})")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (0.2 for 20%), got {text!r}")
    return value


def as_argv(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The command line that ``parser`` would parse into ``args`` (for a subcommand that runs as a module)."""
    argv: list[str] = []
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        v = getattr(args, a.dest, None)
        if not a.option_strings:
            argv += [str(x) for x in v] if isinstance(v, list) else [str(v)]
        elif isinstance(a, argparse._StoreTrueAction):
            argv += [a.option_strings[-1]] if v else []
        elif isinstance(a, argparse._AppendAction):
            for x in v or []:
                argv += [a.option_strings[-1], str(x)]
        elif v is not None:
            argv += [a.option_strings[-1], str(v)]
    return argv


def run_module(module: str, parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``python -m module`` with the subcommand's arguments: heavy work in its own process, its output on
    this terminal; its exit code is the command's."""
    import subprocess

    return subprocess.call([sys.executable, "-m", module, *as_argv(parser, args)])


def as_module_command(p: argparse.ArgumentParser, module: str, add_arguments, extra: str = "train") -> None:
    """The subcommand ``p`` does its work as ``python -m module`` (see ``run_module``), which needs ``extra``;
    ``add_arguments`` defines the arguments for both, so they cannot drift apart."""
    from kidconsole.extras import needing

    add_arguments(p)
    p.set_defaults(func=needing(extra, f"kidconsole {p.prog.split()[-1]}", lambda args: run_module(module, p, args)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    runs = (args.runs or []) + vars(args).pop(_SUB_RUNS, [])
    args.runs = runs or None
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kidconsole",
        description="Adapt a Korean phoneme recogniser to children's speech with LoRA. "
        "With no subcommand, opens the console on the runs root(s).",
    )
    parser.add_argument("--version", action="version", version=f"kidconsole {__version__}")
    parser.add_argument("--runs", action="append", metavar="DIR", help=RUNS_HELP + "; before or after COMMAND")
    parser.add_argument("--eval-share-warn", type=_fraction, default=EVAL_SHARE_WARN, metavar="F",
                        help="evaluation's share of a run's wall time past which the console and `run ls` "
                        f"flag it and say what to change ({EVAL_SHARE_WARN:g})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{mod.name}")
        if hasattr(module, "register"):
            p = sub.add_parser(mod.name, help=module.HELP, description=getattr(module, "DESCRIPTION", None))
            module.register(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command is None:
            from kidconsole.tui.app import run_console

            return run_console(args.runs or default_runs_roots(), eval_share_warn=args.eval_share_warn) or 0
        return args.func(args) or 0
    except KidconsoleError as e:
        print(f"kidconsole: error: {visible(e, lines=True)}", file=sys.stderr)  # it may quote a file's text
        return 2
    except KeyboardInterrupt:
        return 130
