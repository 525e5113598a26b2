"""`run stop` and `run resume`."""

from __future__ import annotations

from kidconsole.cli.run.common import resolve_run
from kidconsole.palette import state_style


def cmd_stop(args) -> int:
    from rich.console import Console

    from kidconsole.runs.life import stop

    run_dir = resolve_run(args)
    console = Console()
    with console.status(f"stopping {run_dir.name}: waiting for its checkpoint (up to {args.timeout:g} s)"):
        report = stop(run_dir, timeout=args.timeout)
    did = str(report).removeprefix(report.state)
    console.print(f"{run_dir.name}: [{state_style(report.state)}]{report.state}[/]{did}", highlight=False)
    return 0


def cmd_resume(args) -> int:
    from rich.console import Console
    from rich.markup import escape

    from kidconsole.runs.life import resume

    run_dir = resolve_run(args)
    done = resume(run_dir, machine_rank=args.machine_rank)
    Console().print(f"[bold]{escape(run_dir.name)}[/]: {escape(done)}", highlight=False)
    return 0
