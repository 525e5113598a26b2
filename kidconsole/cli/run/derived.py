"""`run average` and `run ensemble`: runs made from other runs' weights, run in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from kidconsole import rundir
from kidconsole.cli.run.common import resolve_run, resolve_runs
from kidconsole.palette import state_style
from kidconsole.shown import markup


def steps_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected steps like 1000,1500,2000") from None


def _finish_job(out: Path, state: str) -> int:
    from rich.console import Console

    status = rundir.read_status_record(out)
    test = [ev for _, ev, why in _events(out) if why is None and isinstance(ev, dict) and ev.get("kind") == rundir.EV_TEST]
    per = f", test PER {test[-1]['per'] * 100:.2f}%" if test and test[-1].get("per") is not None else ""
    Console().print(f"[bold]{markup(out.name)}[/]: [{state_style(state)}]{state}[/]{per}; run directory {markup(out)}"
                    + (f"\n{markup(status.error, lines=True)}" if status.error else ""))
    return 0 if state == rundir.FINISHED else 1


def _events(out: Path):
    from kidconsole.jsonl import read_jsonl

    return read_jsonl(out / rundir.EVENTS, "events") if (out / rundir.EVENTS).exists() else iter(())


def _run_job(out: Path, argv: list[str]) -> int:
    """The job started as every job is (detached, supervised), followed here until it ends."""
    from kidconsole.runs.life import follow_job, start_job

    start_job(out, argv)
    return _finish_job(out, follow_job(out))


def cmd_average(args) -> int:
    from kidconsole.runs.derive import average_job

    run = resolve_run(args)
    out, argv = average_job(run, best=args.best, last=args.last, steps=args.steps, lora=args.lora, name=args.name,
                            runs_root=args.runs_root)
    return _run_job(out, argv)


def cmd_ensemble(args) -> int:
    from kidconsole.runs.derive import ensemble_job

    runs = resolve_runs(args, args.runs_given)
    out, argv = ensemble_job(runs, best=args.best, name=args.name, runs_root=args.runs_root)
    return _run_job(out, argv)
