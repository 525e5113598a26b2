"""`run cancel` and `run queue ls|move|slots`: the queue of a runs root."""

from __future__ import annotations

import time
from pathlib import Path

from kidconsole import rundir
from kidconsole.cli.run.common import age, resolve_run, runs_roots
from kidconsole.palette import state_style
from kidconsole.shown import markup


def cmd_cancel(args) -> int:
    from rich.console import Console

    from kidconsole.runs.queue import cancel

    run_dir = resolve_run(args)
    state = cancel(run_dir)
    Console().print(f"{markup(run_dir.name)}: taken out of the queue: [{state_style(state)}]{state}[/]")
    return 0


def cmd_queue(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from kidconsole.runs import queue

    console = Console()
    root = Path(args.runs_root or runs_roots(args)[0])
    if args.queue_command == "move":
        pos = queue.move(resolve_run(args), args.position)
        console.print(f"{markup(Path(args.run).name)}: " + (f"now #{pos}" if pos else "started"))
        return 0
    if args.queue_command == "slots":
        q = queue.set_limits(root, cpu_slots=args.cpu, idle_memory_mib=args.idle_memory_mib)
        console.print(f"{markup(root)}: {q['cpu_slots']} CPU slot(s); a GPU is idle below "
                      f"{q['idle_memory_mib']} MiB used")
        return 0
    started = queue.pump(root)
    for run_dir in started:
        console.print(f"started [bold]{markup(run_dir.name)}[/]")
    runs = queue.queued_runs(root)  # the queued statuses, in queue.json's order
    table = Table(title=markup(f"queue of {root}"))
    for col in ("#", "run", "GPUs", "waits for", "sweep", "queued"):
        table.add_column(col)
    now = time.time()
    for run_dir in runs:
        s = rundir.read_status_record(run_dir)
        table.add_row(str(s.queue_position or "-"), markup(run_dir.name), str(s.gpus_per_run or 1),
                      markup(s.waiting_for or "-"), markup(s.sweep or "-"), age(now - s.queued_at) + " ago" if s.queued_at else "-")
    console.print(table if runs else f"nothing queued under {markup(root)}")
    return 0
