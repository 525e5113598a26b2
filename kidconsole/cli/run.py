"""`kidconsole run launch|ls|logs|stop|resume`: runs from the command line."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kidconsole import rundir
from kidconsole.cli import add_runs_flag, default_runs_roots
from kidconsole.palette import WARNING, state_style


def _gpus(values: list[str] | None) -> list[int]:
    from kidconsole.errors import KidconsoleError

    out = []
    for v in values or []:
        for part in v.split(","):
            part = part.strip()
            if part.lower() == "cpu" or not part:
                continue
            if not part.isdigit():
                raise KidconsoleError(f"--gpus {v}: expected GPU indices like 0 or 0,1 (or cpu)")
            out.append(int(part))
    return out


def _roots(args) -> list[str]:
    return args.runs or default_runs_roots()


def _resolve_run(args) -> Path:
    """RUN as a path to a run directory, or a run name under the runs roots."""
    from kidconsole.errors import KidconsoleError
    from kidconsole.runs.discover import find_runs, is_run_dir

    p = Path(args.run)
    if p.is_dir() and is_run_dir(p):
        return p
    matches = [r for r in find_runs(_roots(args)) if r.name == args.run]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise KidconsoleError(f"run {args.run!r}: no such run directory, and no run of that name under "
                              f"{', '.join(_roots(args))}")
    raise KidconsoleError(f"run {args.run!r}: several runs of that name: {', '.join(map(str, matches))}")


def _age(seconds: float | None) -> str:
    """12s, 5m, 3h20m, 2d4h."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)




def cmd_launch(args) -> int:
    from rich.console import Console

    from kidconsole.runs.launch import launch_run
    from kidconsole.runs.logind import logind_warning

    console = Console()
    warning = logind_warning()
    if warning:
        console.print(f"[{WARNING}]warning:[/] {warning}")
    gpus = _gpus(args.gpus)
    run_dir = launch_run(args.config, gpus=gpus, name=args.name, overrides=args.set or [],
                         runs_root=args.runs_root or _roots(args)[0], trainer_module=args.trainer)

    status = rundir.read_status(run_dir)
    where = f"GPU {','.join(map(str, gpus))}" if gpus else "CPU"
    console.print(f"launched [bold]{run_dir.name}[/] on {where}: pid {status.get('pid')}, run directory {run_dir}")
    console.print(f"follow it: kidconsole run logs -f {run_dir}   stop it: kidconsole run stop {run_dir}")
    return 0


def cmd_ls(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from kidconsole.runs.discover import find_runs
    from kidconsole.runs.reader import RunReader

    runs = find_runs(_roots(args))
    table = Table(title=f"runs under {', '.join(_roots(args))}")
    for col in ("run", "state", "phase", "step", "loss", "eval PER", "best PER", "samples/s", "ETA", "updated",
                "GPUs"):
        table.add_column(col, justify="right" if col not in ("run", "state") else "left")
    now = time.time()
    for run in runs:
        r = RunReader(run)
        r.poll()
        s = r.summary
        state = r.state(stall_after=args.stall_after)
        per = s["eval/per"]
        step = f"{s['step'] or 0}/{s['total_steps']}" if s["total_steps"] else _fmt(s["step"], "d")
        table.add_row(
            run.name, f"[{state_style(state)}]{state}[/]", _fmt(s["phase"], ""), step,
            _fmt(s["train/loss"]["last"], ".4f"),
            _fmt(per["last"] * 100 if per["last"] is not None else None, ".2f"),
            "-" if per["best"] is None else ("~" if r.loading else "")
            + f"{per['best'] * 100:.2f} @{int(per['best_step'])}",
            _fmt(s["samples_per_s"], ".1f"), _age(s["eta_s"]),
            _age(now - s["updated_at"]) + " ago" if s["updated_at"] else "-",
            ",".join(map(str, r.status.get("gpus") or [])) or "cpu",
        )
    table.caption = "~: best of the newest events only (long history; the console loads it all)"
    Console().print(table if runs else f"no runs under {', '.join(_roots(args))}")
    return 0


def cmd_logs(args) -> int:
    from kidconsole.runs.reader import log_tail

    run_dir = _resolve_run(args)
    for line in log_tail(run_dir / rundir.STDOUT, args.lines):
        print(line)
    if args.follow:
        path = run_dir / rundir.STDOUT
        offset = path.stat().st_size if path.exists() else 0
        while True:
            time.sleep(0.5)
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size < offset:
                offset = 0
            if size > offset:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(size - offset)
                offset = size
                print(data.decode("utf-8", errors="replace"), end="", flush=True)
    return 0


def cmd_stop(args) -> int:
    from rich.console import Console

    from kidconsole.runs.control import stop_run

    run_dir = _resolve_run(args)
    console = Console()
    with console.status(f"stopping {run_dir.name}: waiting for its checkpoint (up to {args.timeout:g} s)"):
        state = stop_run(run_dir, timeout=args.timeout)
    console.print(f"{run_dir.name}: [{state_style(state)}]{state}[/]")
    return 0


def cmd_resume(args) -> int:
    from rich.console import Console

    from kidconsole.runs.control import resume_run

    run_dir = resume_run(_resolve_run(args))
    status = rundir.read_status(run_dir)
    Console().print(f"resumed [bold]{run_dir.name}[/] from {status.get('resumed_from')}: pid {status.get('pid')}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="launch, list, follow, stop and resume training runs",
                              description="Training runs: detached from the terminal, one run directory each.")
    sub = p.add_subparsers(dest="run_command", metavar="ACTION", required=True)


    sp = sub.add_parser("launch", help="start a run detached (survives logout and the console)")
    sp.add_argument("config", help="run config (YAML)")
    sp.add_argument("--gpus", nargs="+", metavar="N", help="GPU indices, e.g. 0 or 0,1 (several = one distributed "
                    "run); none: the CPU")
    sp.add_argument("--name", help="run name (default: config name + time)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    sp.add_argument("--runs-root", help="where the run directory goes (default: the first runs root)")
    sp.add_argument("--trainer", default=rundir.TRAINER, help=argparse.SUPPRESS)
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_launch)

    sp = sub.add_parser("ls", help="list runs with their state and progress")
    sp.add_argument("--stall-after", type=float, default=300.0, metavar="S",
                    help="seconds without a heartbeat before a live run shows as stalled (300)")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_ls)

    sp = sub.add_parser("logs", help="print a run's log (stdout.log)")
    sp.add_argument("run", help="run directory or name")
    sp.add_argument("-n", "--lines", type=int, default=50)
    sp.add_argument("-f", "--follow", action="store_true", help="keep printing new output (Ctrl-C ends)")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_logs)

    sp = sub.add_parser("stop", help="stop a run: SIGTERM, wait for its checkpoint, then SIGKILL what is left")
    sp.add_argument("run", help="run directory or name")
    sp.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the checkpoint (120)")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_stop)

    sp = sub.add_parser("resume", help="relaunch a stopped, failed or interrupted run from its newest checkpoint")
    sp.add_argument("run", help="run directory or name")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_resume)
