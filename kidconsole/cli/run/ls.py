"""`run ls`: every run's state and progress, as a table that fits the terminal or as JSON."""

from __future__ import annotations

import math
import time

from kidconsole import rundir
from kidconsole.cli.run.common import age, fmt, runs_roots
from kidconsole.palette import WARNING, state_style
from kidconsole.runs import evalcost
from kidconsole.shown import markup, visible


def _pump(roots: list[str]) -> None:
    """A pass over each root's queue: a `run ls` starts what a freed slot lets start."""
    from rich.console import Console

    from kidconsole.errors import KidconsoleError
    from kidconsole.runs.queue import pump

    for root in roots:
        try:
            pump(root)
        except KidconsoleError as e:  # a broken queue file must not hide the runs
            Console(stderr=True).print(f"[{WARNING}]warning:[/] {markup(e, lines=True)}")


# `run ls` columns, most important first: the narrower the terminal, the more of the last ones are dropped
# (run and state are never dropped nor cut); --wide shows them all
LS_COLUMNS = ("run", "state", "step", "best PER", "eval share", "eval PER", "ETA", "loss", "phase", "eval left",
              "updated", "samples/s", "GPUs", "augmented")


LS_SORTS = ("start", "name", "best")


def best_per(rec: dict) -> float:
    """A run's best PER for `--sort best`: its evaluations' best, a baseline's test PER; inf without one."""
    v = rec["best_per"] if rec["best_per"] is not None else (rec["test"] or {}).get("per")
    return v if isinstance(v, (int, float)) and math.isfinite(v) else math.inf


def sort_records(records: list[dict], how: str) -> list[dict]:
    """The runs in `run ls --sort` order (they come oldest start first)."""
    if how == "name":
        return sorted(records, key=lambda r: (r["run"], r["path"]))
    if how == "best":
        return sorted(records, key=best_per)  # stable: equal ones keep their start order
    return records


def ls_record(r, stall_after: float, now: float) -> dict:
    """One run (its polled reader) as `run ls --json` gives it: its snapshot's JSON (``RunSnapshot.to_json``),
    which the table renders too."""
    from kidconsole.runs.snapshot import snapshot_of

    return snapshot_of(r, now=now, stall_after=stall_after).to_json()


def _ls_cells(rec: dict, now: float, threshold: float) -> dict[str, str]:
    from kidconsole.runs.augment_counts import counts_line

    state = rec["state"]
    step = (f"{rec['step'] or 0}/{rec['total_steps']}" if rec["total_steps"] else fmt(rec["step"], "d"))
    per, best = rec["eval_per"], rec["best_per"]
    if rec["scoring_only"] and rec["test"]:  # a baseline: its test PER stands for the run
        per = rec["test"].get("per")
    share = rec["eval_share"]
    share_txt = "-" if share is None else f"{share:.0%}"
    if share is not None and share > threshold:
        share_txt = f"[{WARNING}]{share_txt}![/]"
    return {
        "run": markup(rec["run"]), "state": f"[{state_style(state)}]{state}[/]", "phase": fmt(rec["phase"], ""),
        "step": step, "loss": fmt(rec["loss"], ".4f"), "eval PER": fmt(per * 100 if per is not None else None, ".2f"),
        "best PER": "-" if best is None else ("~" if rec["best_of_newest_only"] else "")
        + f"{best * 100:.2f} @{int(rec['best_per_step'])}",
        "eval share": share_txt, "eval left": age(rec["eval_left_s"]),
        "samples/s": fmt(rec["samples_per_s"], ".1f"), "ETA": age(rec["eta_s"]),
        "updated": age(now - rec["updated_at"]) + " ago" if rec["updated_at"] else "-",
        "GPUs": f"#{rec['queue_position']} waits" if state == rundir.QUEUED
        else ",".join(map(str, rec["gpus"])) or ("-" if rec["read_only"] else "cpu"),  # another tool's: unknown
        "where": markup(rec["where"] or "-"),  # n[01-02]: Slurm's node lists are no markup
        "augmented": markup(counts_line(rec["augmented"])),
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
        table = Table(title=markup(title), box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
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
    from kidconsole.runs.life import open_run, sample

    roots = runs_roots(args)
    _pump(roots)
    readers = [open_run(run) for run in find_runs(roots)]
    for r in readers:
        r.poll()
    sample([(r.path, r.status) for r in readers])  # a Slurm job's state: one query for all, now
    now = time.time()
    records = sort_records([ls_record(r, args.stall_after, now) for r in readers], getattr(args, "sort", "start"))
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    if not records:
        print(visible(f"no runs under {', '.join(roots)}"))
        return 0
    console = Console()
    threshold = getattr(args, "eval_share_warn", evalcost.EVAL_SHARE_WARN)
    table, needed = ls_table(records, None if args.wide else console.width, f"runs under {', '.join(roots)}", now,
                             threshold)
    if args.wide or needed > console.width:  # never cut: a wider line than the terminal wraps, a pipe keeps it
        console = Console(width=max(needed, console.width))
    console.print(table)
    return 0
