"""`run stop` and `run resume`."""

from __future__ import annotations

from kidconsole.cli.run.common import resolve_run
from kidconsole.palette import state_style
from kidconsole.shown import markup


def cmd_stop(args) -> int:
    from rich.console import Console

    from kidconsole.runs.life import stop

    run_dir = resolve_run(args)
    console = Console()
    with console.status(f"stopping {markup(run_dir.name)}: waiting for its checkpoint (up to {args.timeout:g} s)"):
        report = stop(run_dir, timeout=args.timeout)
    did = str(report).removeprefix(report.state)
    console.print(f"{markup(run_dir.name)}: [{state_style(report.state)}]{report.state}[/]{markup(did)}",
                  highlight=False)
    return 0


def cmd_resume(args) -> int:
    from rich.console import Console
    from kidconsole.runs.life import resume

    run_dir = resolve_run(args)
    done = resume(run_dir, machine_rank=args.machine_rank)
    Console().print(f"[bold]{markup(run_dir.name)}[/]: {markup(done)}", highlight=False)
    return 0
