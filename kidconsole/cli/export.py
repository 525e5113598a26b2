"""``kidconsole export RUN --onnx [--int8]``: ONNX (and INT8) exports of a finished run, scored and measured."""

from __future__ import annotations

import argparse
from pathlib import Path

from kidconsole.cli import as_argv
from kidconsole.extras import needing
from kidconsole.job_arguments import add_export_arguments


HELP = "ONNX / INT8 exports of a finished run, scored on its test manifest like runs"
DESCRIPTION = ("Exports RUN's merged model to ONNX (dynamic batch and length, checked against PyTorch) and, with "
               "--int8, ONNX Runtime's dynamic INT8. Each export is scored on the run's test manifest and becomes a "
               "run directory under RUN/exports/<kind>/ (kidconsole report reads it); the table of sizes, CPU "
               "real-time factors and PER against the PyTorch fp32 model is printed and written to "
               "RUN/exports/exports.md.")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--onnx", action="store_true", help="export to ONNX (fp32; --int8 implies it)")
    add_export_arguments(p)
    p.set_defaults(func=needing("train", "kidconsole export", run))


def run(args) -> int:
    """The export job started as the console starts it (detached, supervised: its end is recorded whatever
    happens to this terminal), followed here; Ctrl-C stops it."""
    import sys

    from kidconsole import rundir
    from kidconsole.errors import KidconsoleError
    from kidconsole.runs.exports import start_export
    from kidconsole.runs.life import follow_job
    from kidconsole.shown import visible

    if not (args.onnx or args.int8):
        raise KidconsoleError("choose what to export: --onnx (and --int8)")
    job_parser = argparse.ArgumentParser(add_help=False)
    add_export_arguments(job_parser)
    options = as_argv(job_parser, args)[1:]  # RUN is the job's first argument
    start_export(args.run, options)
    job = Path(args.run).resolve() / rundir.EXPORTS
    state = follow_job(job, log=rundir.EXPORT_LOG)
    if state == rundir.FINISHED:
        return 0
    status = rundir.read_status_record(job)
    print(f"kidconsole: export {state}: {visible(status.error or state, lines=True)} "
          f"(log: {job / rundir.EXPORT_LOG})", file=sys.stderr)
    return 1
