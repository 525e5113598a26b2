"""`run stop` and `run resume`."""

from __future__ import annotations

from kidconsole import rundir
from kidconsole.cli.run.common import resolve_run
from kidconsole.palette import state_style


def cmd_stop(args) -> int:
    from rich.console import Console

    from kidconsole.runs.control import stop_run

    run_dir = resolve_run(args)
    console = Console()
    with console.status(f"stopping {run_dir.name}: waiting for its checkpoint (up to {args.timeout:g} s)"):
        report = stop_run(run_dir, timeout=args.timeout)
    did = str(report).removeprefix(report.state)
    console.print(f"{run_dir.name}: [{state_style(report.state)}]{report.state}[/]{did}", highlight=False)
    return 0


def cmd_resume(args) -> int:
    from rich.console import Console

    from kidconsole.runs.control import resume_run

    run_dir = resume_run(resolve_run(args), machine_rank=args.machine_rank)
    if rundir.read_status(run_dir).get("slurm_job_id"):
        status = rundir.read_status(run_dir)
        Console().print(f"resubmitted [bold]{run_dir.name}[/] from {status.get('resumed_from')}: "
                        f"Slurm job {status['slurm_job_id']}")
        return 0
    if args.machine_rank:
        Console().print(f"resumed machine {args.machine_rank} of [bold]{run_dir.name}[/]")
        return 0
    status = rundir.read_status(run_dir)
    Console().print(f"resumed [bold]{run_dir.name}[/] from {status.get('resumed_from')}: pid {status.get('pid')}")
    return 0
