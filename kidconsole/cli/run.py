"""`kidconsole run launch|ls|logs|stop|resume|average|ensemble`: runs from the command line."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kidconsole import rundir
from kidconsole.cli import add_runs_flag, default_runs_roots
from kidconsole.palette import WARNING, state_style
from kidconsole.runs import evalcost


def _auto(values: list[str] | None) -> bool:
    """``--gpus auto``: queue the run until GPUs (or a CPU slot) are free."""
    return [v.strip().lower() for v in values or []] == ["auto"]


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


def _int_or_none(v) -> int | None:
    return None if v is None else int(v)


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
    if _auto(args.gpus):
        from kidconsole.runs.queue import launch_queued

        if args.slurm or args.machines > 1:
            from kidconsole.errors import KidconsoleError

            raise KidconsoleError("--gpus auto waits in this server's queue: not with --slurm (Slurm queues the job) "
                                  "or --machines")

        [run_dir] = launch_queued([(args.config, args.set or [], args.name, {})], gpus_per_run=args.gpus_per_run,
                                  runs_root=args.runs_root or _roots(args)[0], trainer_module=args.trainer)
        _print_queued(console, [run_dir])
        return 0
    gpus = _gpus(args.gpus)
    if args.slurm:
        return cmd_launch_slurm(args, console)
    machines = None
    if args.machines > 1:
        from kidconsole.runs.launch import Machines

        machines = Machines(args.machines, args.machine_rank, args.main_addr, args.main_port)
    run_dir = launch_run(args.config, gpus=gpus, name=args.name, overrides=args.set or [],
                         runs_root=args.runs_root or _roots(args)[0], trainer_module=args.trainer, machines=machines)
    if machines is not None and args.machine_rank:
        console.print(f"machine {args.machine_rank} of {run_dir.name} started; it joins machine 0 at "
                      f"{args.main_addr}:{args.main_port}")
        return 0

    status = rundir.read_status(run_dir)
    where = f"GPU {','.join(map(str, gpus))}" if gpus else "CPU"
    console.print(f"launched [bold]{run_dir.name}[/] on {where}: pid {status.get('pid')}, run directory {run_dir}")
    console.print(f"follow it: kidconsole run logs -f {run_dir}   stop it: kidconsole run stop {run_dir}")
    return 0


def _print_queued(console, run_dirs: list[Path]) -> None:
    for run_dir in run_dirs:
        status = rundir.read_status(run_dir)
        if status.get("state") == rundir.QUEUED:
            console.print(f"queued [bold]{run_dir.name}[/] at #{status.get('queue_position')}: waits for "
                          f"{status.get('waiting_for')}")
        else:
            where = f"GPU {','.join(map(str, status.get('gpus') or []))}" if status.get("gpus") else "CPU"
            console.print(f"started [bold]{run_dir.name}[/] on {where}: pid {status.get('pid')}")
    if run_dirs:
        console.print(f"the queue: kidconsole run queue ls --runs {run_dirs[0].parent}")


def _pump(roots: list[str]) -> None:
    """A pass over each root's queue: a `run ls` starts what a freed slot lets start."""
    from rich.console import Console

    from kidconsole.errors import KidconsoleError
    from kidconsole.runs.queue import pump

    for root in roots:
        try:
            pump(root)
        except KidconsoleError as e:  # a broken queue file must not hide the runs
            Console(stderr=True).print(f"[{WARNING}]warning:[/] {e}")


# `run ls` columns, most important first: the narrower the terminal, the more of the last ones are dropped
# (run and state are never dropped nor cut); --wide shows them all
LS_COLUMNS = ("run", "state", "step", "best PER", "eval share", "eval PER", "ETA", "loss", "phase", "eval left",
              "updated", "samples/s", "GPUs", "augmented")


def cmd_launch_slurm(args, console) -> int:
    from kidconsole.runs.slurm import SlurmOptions, launch_slurm

    if args.gpus or args.machines > 1:
        from kidconsole.errors import KidconsoleError

        raise KidconsoleError("--slurm: Slurm places the run: use --nodes and --gpus-per-node, "
                              "not --gpus or --machines")
    opts = SlurmOptions(partition=args.partition, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                        time=args.time, account=args.account, grace=args.grace, extra=tuple(args.sbatch_arg))
    run_dir = launch_slurm(args.config, opts, name=args.name, overrides=args.set or [],
                           runs_root=args.runs_root or _roots(args)[0], trainer_module=args.trainer)
    status = rundir.read_status(run_dir)
    console.print(f"submitted [bold]{run_dir.name}[/]: Slurm job {status['slurm_job_id']} ({args.nodes} node(s) x "
                  f"{args.gpus_per_node or 'CPU'}), batch script {run_dir / rundir.JOB_SCRIPT}")
    console.print(f"follow it: kidconsole run ls   stop it: kidconsole run stop {run_dir}")
    return 0


def ls_record(run: Path, stall_after: float, now: float) -> dict:
    """One run as `run ls --json` gives it: plain numbers (fractions, seconds, unix times)."""
    from kidconsole.runs.reader import RunReader
    from kidconsole.runs.slurm import where

    r = RunReader(run)
    r.poll()
    s = r.summary
    per, cost = s["eval/per"], s["eval_cost"]
    return {"run": run.name, "path": str(run), "state": r.state(stall_after=stall_after), "phase": s["phase"],
            "step": s["step"], "total_steps": s["total_steps"], "loss": s["train/loss"]["last"],
            "eval_per": per["last"], "best_per": per["best"], "best_per_step": _int_or_none(per["best_step"]),
            "best_of_newest_only": r.loading and per["best"] is not None,
            "eval_share": cost.share, "eval_seconds": cost.seconds, "eval_left_s": cost.left,
            "samples_per_s": s["samples_per_s"], "eta_s": s["eta_s"], "updated_at": s["updated_at"],
            "gpus": r.status.get("gpus") or [], "test": s["test"] or None, "scoring_only": s["scoring_only"],
            "queue_position": r.status.get("queue_position"), "where": where(r.status),
            "augmented": s["augmented"]}


def _ls_cells(rec: dict, now: float, threshold: float) -> dict[str, str]:
    from rich.markup import escape

    from kidconsole.runs.augment_counts import counts_line

    state = rec["state"]
    step = (f"{rec['step'] or 0}/{rec['total_steps']}" if rec["total_steps"] else _fmt(rec["step"], "d"))
    per, best = rec["eval_per"], rec["best_per"]
    if rec["scoring_only"] and rec["test"]:  # a baseline: its test PER stands for the run
        per = rec["test"].get("per")
    share = rec["eval_share"]
    share_txt = "-" if share is None else f"{share:.0%}"
    if share is not None and share > threshold:
        share_txt = f"[{WARNING}]{share_txt}![/]"
    return {
        "run": rec["run"], "state": f"[{state_style(state)}]{state}[/]", "phase": _fmt(rec["phase"], ""),
        "step": step, "loss": _fmt(rec["loss"], ".4f"), "eval PER": _fmt(per * 100 if per is not None else None, ".2f"),
        "best PER": "-" if best is None else ("~" if rec["best_of_newest_only"] else "")
        + f"{best * 100:.2f} @{int(rec['best_per_step'])}",
        "eval share": share_txt, "eval left": _age(rec["eval_left_s"]),
        "samples/s": _fmt(rec["samples_per_s"], ".1f"), "ETA": _age(rec["eta_s"]),
        "updated": _age(now - rec["updated_at"]) + " ago" if rec["updated_at"] else "-",
        "GPUs": f"#{rec['queue_position']} waits" if state == rundir.QUEUED
        else ",".join(map(str, rec["gpus"])) or "cpu",
        "where": escape(rec["where"] or "-"),  # n[01-02]: Slurm's node lists are no markup
        "augmented": escape(counts_line(rec["augmented"])),
    }


def ls_table(records: list[dict], width: int | None, title: str, now: float, threshold: float):
    """The runs as a Rich table that fits ``width`` columns (None: every column): the least important columns
    go first; run names and states are never cut."""
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    rows = [_ls_cells(rec, now, threshold) for rec in records]

    def build(columns) -> Table:
        # no side borders, one space between columns: more columns fit
        table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        for col in columns:
            keep = col in ("run", "state")
            # two-word headings on two lines: the columns are as narrow as their values
            left = keep or col == "where"
            table.add_column(col.replace(" ", "\n"), justify="left" if left else "right", no_wrap=True,
                             overflow="fold" if keep else "ellipsis")
        for row in rows:
            table.add_row(*(row[c] for c in columns))
        return table

    every = list(LS_COLUMNS)
    if any(r["where"] for r in records):  # a Slurm job (its state, why it waits, its nodes), a run elsewhere
        every.insert(every.index("state") + 1, "where")
    columns = list(every)
    measure = Console(width=10_000)
    while width is not None and len(columns) > 2:
        if Measurement.get(measure, measure.options, build(columns)).maximum <= width:
            break
        columns.pop()
    table = build(columns)
    notes = []
    if any(r["best_of_newest_only"] for r in records):
        notes.append("~: best of the newest events only (long history; the console loads it all)")
    if "eval share" in columns and any(r["eval_share"] is not None and r["eval_share"] > threshold
                                       for r in records):
        notes.append(f"!: evaluation takes over {threshold:.0%} of the run: {evalcost.ADVICE}")
    dropped = len(every) - len(columns)
    if dropped:
        notes.append(f"{dropped} more columns with --wide or a wider terminal")
    table.caption = "\n".join(notes) or None
    return table, Measurement.get(measure, measure.options, table).maximum


def cmd_ls(args) -> int:
    import json

    from rich.console import Console

    from kidconsole.runs.discover import find_runs

    roots = _roots(args)
    _pump(roots)
    now = time.time()
    records = [ls_record(run, args.stall_after, now) for run in find_runs(roots)]
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    if not records:
        print(f"no runs under {', '.join(roots)}")
        return 0
    console = Console()
    threshold = getattr(args, "eval_share_warn", evalcost.EVAL_SHARE_WARN)
    table, needed = ls_table(records, None if args.wide else console.width, f"runs under {', '.join(roots)}", now,
                             threshold)
    if args.wide or needed > console.width:  # never cut: a wider line than the terminal wraps, a pipe keeps it
        console = Console(width=max(needed, console.width))
    console.print(table)
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
        report = stop_run(run_dir, timeout=args.timeout)
    did = str(report).removeprefix(report.state)
    console.print(f"{run_dir.name}: [{state_style(report.state)}]{report.state}[/]{did}", highlight=False)
    return 0


def cmd_resume(args) -> int:
    from rich.console import Console

    from kidconsole.runs.control import resume_run

    run_dir = resume_run(_resolve_run(args), machine_rank=args.machine_rank)
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


def cmd_sweep(args) -> int:
    from rich.console import Console

    from kidconsole.runs.sweep import launch_sweep

    if args.gpus and not _auto(args.gpus):
        from kidconsole.errors import KidconsoleError

        raise KidconsoleError("run sweep: --gpus takes only `auto` (every point waits in the queue)")
    sid, runs = launch_sweep(args.config, args.grid, overrides=args.set or [], name=args.name,
                             gpus_per_run=args.gpus_per_run, runs_root=args.runs_root or _roots(args)[0],
                             trainer_module=args.trainer)
    console = Console()
    console.print(f"sweep [bold]{sid}[/]: {len(runs)} runs")
    _print_queued(console, runs)
    return 0


def cmd_cancel(args) -> int:
    from rich.console import Console

    from kidconsole.runs.queue import cancel

    run_dir = _resolve_run(args)
    state = cancel(run_dir)
    Console().print(f"{run_dir.name}: taken out of the queue: [{state_style(state)}]{state}[/]")
    return 0


def cmd_queue(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from kidconsole.runs import queue

    console = Console()
    root = Path(args.runs_root or _roots(args)[0])
    if args.queue_command == "move":
        pos = queue.move(_resolve_run(args), args.position)
        console.print(f"{Path(args.run).name}: " + (f"now #{pos}" if pos else "started"))
        return 0
    if args.queue_command == "slots":
        q = queue.set_limits(root, cpu_slots=args.cpu, idle_memory_mib=args.idle_memory_mib)
        console.print(f"{root}: {q['cpu_slots']} CPU slot(s); a GPU is idle below {q['idle_memory_mib']} MiB used")
        return 0
    started = queue.pump(root)
    for run_dir in started:
        console.print(f"started [bold]{run_dir.name}[/]")
    runs = queue.queued_runs(root) if queue.queue_path(root).exists() else []
    table = Table(title=f"queue of {root}")
    for col in ("#", "run", "GPUs", "waits for", "sweep", "queued"):
        table.add_column(col)
    now = time.time()
    for run_dir in runs:
        s = rundir.read_status(run_dir)
        table.add_row(str(s.get("queue_position") or "-"), run_dir.name, str(s.get("gpus_per_run") or 1),
                      s.get("waiting_for") or "-", s.get("sweep") or "-",
                      _age(now - s["queued_at"]) + " ago" if s.get("queued_at") else "-")
    console.print(table if runs else f"nothing queued under {root}")
    return 0


def _steps(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected steps like 1000,1500,2000") from None


def _resolve_each(args, names: list[str]) -> list[Path]:
    out = []
    for name in names:
        args.run = name
        out.append(_resolve_run(args))
    return out


def _finish_job(out: Path, code: int) -> int:
    from rich.console import Console

    status = rundir.read_status(out)
    state = status.get("state") or "-"
    test = [ev for _, ev, why in _events(out) if why is None and isinstance(ev, dict) and ev.get("kind") == rundir.EV_TEST]
    per = f", test PER {test[-1]['per'] * 100:.2f}%" if test and test[-1].get("per") is not None else ""
    Console().print(f"[bold]{out.name}[/]: [{state_style(state)}]{state}[/]{per}; run directory {out}"
                    + (f"\n{status.get('error')}" if status.get("error") else ""))
    return 0 if code == 0 and state == rundir.FINISHED else 1


def _events(out: Path):
    from kidconsole.jsonl import read_jsonl

    return read_jsonl(out / rundir.EVENTS, "events") if (out / rundir.EVENTS).exists() else iter(())


def cmd_average(args) -> int:
    from kidconsole.runs.derive import average_job, run_job

    run = _resolve_run(args)
    out, argv = average_job(run, best=args.best, last=args.last, steps=args.steps, lora=args.lora, name=args.name,
                            runs_root=args.runs_root)
    return _finish_job(out, run_job(out, argv))


def cmd_ensemble(args) -> int:
    from kidconsole.runs.derive import ensemble_job, run_job

    runs = _resolve_each(args, args.runs_given)
    out, argv = ensemble_job(runs, best=args.best, name=args.name, runs_root=args.runs_root)
    return _finish_job(out, run_job(out, argv))


def _derived_flags(sp, default_name: str, beside: str) -> None:
    """Where a run made from other runs goes."""
    sp.add_argument("--name", help=f"the new run's name (default: {default_name})")
    sp.add_argument("--runs-root", help=f"where the new run goes (default: next to {beside})")
    add_runs_flag(sp)


HELP = "launch, list, follow, stop and resume training runs"
DESCRIPTION = "Training runs: detached from the terminal, one run directory each."


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="run_command", metavar="ACTION", required=True)


    sp = sub.add_parser("launch", help="start a run detached (survives logout and the console)")
    sp.add_argument("config", help="run config (YAML)")
    sp.add_argument("--gpus", nargs="+", metavar="N", help="GPU indices, e.g. 0 or 0,1 (several = one distributed "
                    "run); auto: wait in the queue for free GPUs (or a CPU slot); none: the CPU")
    sp.add_argument("--gpus-per-run", type=int, default=1, metavar="K", help="with --gpus auto: GPUs the run needs (1)")
    sp.add_argument("--name", help="run name (default: config name + time)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    sp.add_argument("--runs-root", help="where the run directory goes (default: the first runs root)")
    sp.add_argument("--trainer", default=rundir.TRAINER, help=argparse.SUPPRESS)
    g = sp.add_argument_group("one run over several machines (each runs this launch with its rank, the same --name, "
                              "and a run directory they share)")
    g.add_argument("--machines", type=int, default=1, metavar="M", help="machines of the run (1)")
    g.add_argument("--machine-rank", type=int, default=0, metavar="R", help="this machine, 0 to M-1 (0)")
    g.add_argument("--main-addr", default="127.0.0.1", metavar="IP", help="address of machine 0")
    g.add_argument("--main-port", type=int, default=29500, metavar="PORT", help="port on machine 0 (29500)")
    g = sp.add_argument_group("Slurm (writes RUN_DIR/job.sbatch and submits it; --gpus does not apply)")
    g.add_argument("--slurm", action="store_true", help="submit the run as a Slurm job")
    g.add_argument("--partition", metavar="P")
    g.add_argument("--nodes", type=int, default=1, metavar="N", help="nodes, one machine of the run each (1)")
    g.add_argument("--gpus-per-node", type=int, default=0, metavar="G", help="GPUs per node (0: the CPU)")
    g.add_argument("--time", metavar="T", help="time limit, as sbatch takes it (e.g. 2-00:00:00)")
    g.add_argument("--account", metavar="A")
    g.add_argument("--grace", type=int, default=120, metavar="S",
                   help="seconds before the time limit when the job is asked to checkpoint (120)")
    g.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                   help="one more sbatch option, e.g. --sbatch-arg=--qos=high (repeatable)")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_launch)

    sp = sub.add_parser("sweep", help="queue one run per point of a grid of config keys (--gpus auto)",
                        description="Expand --grid KEY=V1,V2 (repeatable; every combination) into queued runs "
                        "sharing one sweep id.")
    sp.add_argument("config", help="run config (YAML)")
    sp.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                    help="a config key and its values, e.g. lora.r=16,32 (repeatable)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key in every run (repeatable)")
    sp.add_argument("--gpus", nargs="+", metavar="auto", help="auto (the default): each run waits for free GPUs")
    sp.add_argument("--gpus-per-run", type=int, default=1, metavar="K", help="GPUs each run needs (1)")
    sp.add_argument("--name", help="sweep name (default: the config's file name); runs are NAME-TIME-01, ...")
    sp.add_argument("--runs-root", help="where the run directories go (default: the first runs root)")
    sp.add_argument("--trainer", default=rundir.TRAINER, help=argparse.SUPPRESS)
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_sweep)

    sp = sub.add_parser("cancel", help="take a queued run out of the queue (it ends stopped, never started)")
    sp.add_argument("run", help="run directory or name")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_cancel)

    sp = sub.add_parser("queue", help="the queue of runs waiting for GPUs: ls, move, slots",
                        description="The queue lives in the runs root (queue.json); every command here passes "
                        "over it first, starting what fits.")
    qsub = sp.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    qp = qsub.add_parser("ls", help="the queued runs in order, with what each waits for")
    qp.add_argument("--runs-root", help="the runs root whose queue (default: the first runs root)")
    add_runs_flag(qp)
    qp = qsub.add_parser("move", help="put a queued run at another place")
    qp.add_argument("run", help="run directory or name")
    qp.add_argument("position", type=int, help="1-based place (1: next to start)")
    qp.add_argument("--runs-root", help=argparse.SUPPRESS)
    add_runs_flag(qp)
    qp = qsub.add_parser("slots", help="how many CPU runs at once, and when a GPU counts as idle")
    qp.add_argument("--cpu", type=int, metavar="N", help="CPU slots (runs at once without GPUs; 1)")
    qp.add_argument("--idle-memory-mib", type=int, metavar="MIB", help="a GPU is idle below this used memory (1024)")
    qp.add_argument("--runs-root", help="the runs root whose queue (default: the first runs root)")
    add_runs_flag(qp)
    sp.set_defaults(func=cmd_queue)

    sp = sub.add_parser("ls", help="list runs with their state and progress")
    sp.add_argument("--stall-after", type=float, default=300.0, metavar="S",
                    help="seconds without a heartbeat before a live run shows as stalled (300)")
    out = sp.add_mutually_exclusive_group()
    out.add_argument("--wide", action="store_true", help="every column, however wide the terminal")
    out.add_argument("--json", action="store_true", help="the runs as JSON, for scripts (fractions and seconds)")
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

    sp = sub.add_parser("average", help="average checkpoints of a run's last phase into a new, scored run",
                        description="Averages the trainable weights (LoRA and head, or every trained weight) of "
                        "the chosen checkpoints of RUN's last phase, scores the test manifest and exports the model, "
                        "as a new run directory next to RUN (see docs/training.md, Checkpoint averaging).")
    sp.add_argument("run", help="run directory or name")
    how = sp.add_mutually_exclusive_group(required=True)
    how.add_argument("--best", type=int, metavar="N", help="the N checkpoints of the best validation metric")
    how.add_argument("--last", type=int, metavar="N", help="the N newest checkpoints")
    how.add_argument("--steps", type=_steps, metavar="S1,S2,...", help="the checkpoints of these steps")
    sp.add_argument("--lora", choices=("deltas", "factors"), default="deltas",
                    help="deltas: the mean of the LoRA updates B·A, exactly (default); factors: mean A and mean B")
    _derived_flags(sp, "RUN-avg-best3 ...", "RUN")
    sp.set_defaults(func=cmd_average)

    sp = sub.add_parser("ensemble", help="score the test manifest with several models' posteriors averaged",
                        description="Decodes the test manifest from the mean per-frame posteriors of several "
                        "finished runs (their exported models), or of the N best checkpoints of one run, as a new "
                        "run directory. The members must share the phone set and feature extractor.")
    sp.add_argument("runs_given", nargs="+", metavar="RUN", help="run directories or names")
    sp.add_argument("--best", type=int, metavar="N", help="one RUN: its N best checkpoints of the last phase")
    _derived_flags(sp, "RUN-ens-best3, ens-RUN-2runs", "the first RUN")
    sp.set_defaults(func=cmd_ensemble)

    sp = sub.add_parser("resume", help="relaunch a stopped, failed or interrupted run from its newest checkpoint "
                        "(a Slurm run: submit its job again with --resume)")
    sp.add_argument("run", help="run directory or name")
    sp.add_argument("--machine-rank", type=int, default=0, metavar="R",
                    help="a run over several machines: this machine (each machine resumes its share)")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_resume)
