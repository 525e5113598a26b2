"""Many long runs, ours and a Hugging Face Trainer's mixed: the console's first frame and `run ls` on 24 runs
with 300,000-step histories each (what ten days at the reference's rate leave).

The runs are generated under a temporary folder (never in the repository): 12 of ours (events.jsonl: a
``train`` event every 10 steps, ``train.log_every``'s default, an evaluation every 2,000 steps; status.json)
and 12 Trainer output folders logged at the same rate (``logging_steps`` 10, ``eval_steps`` and
``save_steps`` 2,000, ``save_total_limit`` 2): 8 with TensorBoard event files (``runs/<date>_<host>/``, one
record per scalar as the Trainer's callback writes them) and their two newest checkpoints'
trainer_state.json, 4 with the checkpoints' trainer_state.json only (``report_to: none``). Half of each
still train (files new, a process of ours names them), half ended.

- ``run ls``: a fresh ``python -m kidconsole run ls --runs ROOT`` (the table, and ``--json``), wall time from
  process start to exit, median of 3.
- first frame: a fresh Python process opens the console (headless) on the 24 runs; from its start to the
  first frame with all 24 cards and their newest history (bench_console's method), median of 3.
- the CPU seconds of each (the machine is shared: wall time moves with its load), and `run ls` on an empty
  runs root: what the CLI's own start costs. The processes find their modules compiled (bytecode written),
  as an installed package's are.
- whole history: the same console, until every run's older history is in (the readers load it after the
  first frame, newest first).

``python -m bench many_runs [--runs 24 --steps 300000 --repeats 3] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
# the processes measured find their modules compiled, as an installed package's are
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
LOG_EVERY, EVAL_EVERY, SAVE_EVERY = 10, 2000, 2000
T0 = 1_700_000_000.0
STEP_S = 0.7  # seconds a step: 300,000 steps in about two and a half days of logged time
PLANNED = 332_211  # the steps a live run is still going for (the reference's full runs)

CONSOLE = textwrap.dedent("""
    import sys, time
    t0 = float(sys.argv[2])
    n, mode = int(sys.argv[3]), sys.argv[4]
    from kidconsole.tui.app import KidConsole

    class Bench(KidConsole):
        def on_runs_updated(self, message):
            super().on_runs_updated(message)
            views = self.views.values()
            if not getattr(self, "_first", None) and len(self.views) >= n and all(v.step is not None for v in views):
                self._first = True
                self.call_after_refresh(self._frame)
            if mode == "all" and getattr(self, "_first", None) and len(self.views) >= n \\
                    and not any(v.loading for v in views):
                print(f"ALL_LOADED {time.time() - t0:.4f}", file=sys.__stdout__, flush=True)
                self.exit()

        def _frame(self):
            print(f"FIRST_FRAME {time.time() - t0:.4f}", file=sys.__stdout__, flush=True)
            if mode == "first":
                self.exit()

    Bench([sys.argv[1]]).run(headless=True)
""")


# ---- the runs ------------------------------------------------------------------------------------------

def ours_events(path: Path, steps: int, ended: bool) -> None:
    rng = random.Random(0)
    total = steps if ended else max(steps, PLANNED)
    with open(path, "w") as fh:
        fh.write(json.dumps({"t": T0, "kind": "start", "step": 0, "resumed_from": None, "world_size": 1,
                             "trainable_params": 1_572_864, "total_params": 317_000_000,
                             "total_steps": total}) + "\n")
        for s in range(LOG_EVERY, steps + 1, LOG_EVERY):
            t = round(T0 + s * STEP_S, 3)
            fh.write(json.dumps({"t": t, "kind": "train", "step": s, "phase": 1, "epoch": s * 3 // steps,
                                 "loss": round(0.5 + 2 / (1 + s / 3000) + rng.random() * 0.05, 5), "lr": 5e-5,
                                 "grad_norm": round(0.5 + rng.random() * 0.5, 4), "samples_per_s": 45.0,
                                 "samples": s * 32, "audio_seconds": s * 131.2, "padding": 0.12,
                                 "total_steps": total}, separators=(",", ":")) + "\n")
            if s % EVAL_EVERY == 0:
                per = round(0.12 + 0.25 / (1 + s / 20000), 4)
                fh.write(json.dumps({"t": t, "kind": "eval", "step": s, "phase": 1, "loss": per * 1.5, "per": per,
                                     "cer": per * 0.74, "wer": per * 2.1, "n": 20000, "eval_seconds": 150.0,
                                     "eval_share": 0.03}, separators=(",", ":")) + "\n")
        if ended:
            fh.write(json.dumps({"t": T0 + steps * STEP_S + 1, "kind": "end", "step": steps, "state": "finished",
                                 "exit_code": 0, "reason": "all phases done"}) + "\n")


def ours_run(folder: Path, events: Path, steps: int, ended: bool) -> None:
    folder.mkdir(parents=True)
    shutil.copy(events, folder / "events.jsonl")
    status = {"name": folder.name, "kind": "local", "state": "finished" if ended else "running",
              "host": platform.node(), "pid": None, "gpus": [0], "started_at": T0,
              "updated_at": T0 + steps * STEP_S, "phase": 1, "step": steps,
              "total_steps": steps if ended else max(steps, PLANNED)}
    (folder / "status.json").write_text(json.dumps(status, indent=1))


def bring_to_life(root: Path, live: list[str]) -> None:
    """The live half as if training now: its files new (a Trainer folder runs while it changes), each run of
    ours's process this one (alive while the measures run)."""
    now = time.time()
    for name in live:
        run = root / name
        status = run / "status.json"
        if status.exists():
            st = json.loads(status.read_text())
            st.update(pid=os.getpid(), updated_at=now)
            status.write_text(json.dumps(st, indent=1))
        for p in [run, *run.rglob("*")]:
            os.utime(p, (now, now))


def hf_history(steps: int) -> list[dict]:
    rng = random.Random(1)
    out = []
    for s in range(LOG_EVERY, steps + 1, LOG_EVERY):
        out.append({"epoch": round(3 * s / steps, 4), "grad_norm": round(0.5 + rng.random() * 0.5, 4),
                    "learning_rate": 5e-5 * (1 - s / steps), "loss": round(0.5 + 2 / (1 + s / 3000), 5), "step": s})
        if s % EVAL_EVERY == 0:
            per = round(0.11 + 0.25 / (1 + s / 20000), 4)
            out.append({"epoch": round(3 * s / steps, 4), "eval_loss": per * 1.5, "eval_per": per,
                        "eval_runtime": 150.0, "eval_samples_per_second": 133.3, "eval_steps_per_second": 4.2,
                        "step": s})
    return out


def hf_state(history: list[dict], step: int, max_steps: int, end: dict | None = None) -> str:
    part = [e for e in history if e["step"] <= step] + ([end] if end else [])
    return json.dumps({"best_global_step": step, "best_metric": part[-1].get("eval_per"), "epoch": part[-1]["epoch"],
                       "eval_steps": EVAL_EVERY, "global_step": step, "log_history": part,
                       "logging_steps": LOG_EVERY, "max_steps": max_steps, "num_train_epochs": 3,
                       "save_steps": SAVE_EVERY, "train_batch_size": 16}, indent=2, sort_keys=True) + "\n"


def hf_events(path: Path, history: list[dict], max_steps: int) -> None:
    """One record per scalar, as the Trainer's TensorBoard callback writes (tensorboardX's protobufs)."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.record_writer import RecordWriter

    w = RecordWriter(str(path))
    w.write(Event(wall_time=T0, file_version="brain.Event:2").SerializeToString())
    args = json.dumps({"max_steps": max_steps, "num_train_epochs": 3, "logging_steps": LOG_EVERY})
    w.write(Event(wall_time=T0, step=0, summary=Summary(value=[Summary.Value(
        tag="args/text_summary", metadata={"plugin_data": {"plugin_name": "text"}},
        tensor={"dtype": 7, "string_val": [args.encode()]})])).SerializeToString())
    for e in history:
        t = T0 + e["step"] * STEP_S
        for k, v in e.items():
            if k == "step":
                continue
            tag = "eval/" + k[5:] if k.startswith("eval_") else "train/" + k
            w.write(Event(wall_time=t, step=e["step"],
                          summary=Summary(value=[Summary.Value(tag=tag, simple_value=v)])).SerializeToString())
    w.close()


def hf_run(folder: Path, events: Path | None, states: dict[int, str]) -> None:
    if events is not None:
        logs = folder / "runs" / "Jan01_00-00-00_gpu"
        logs.mkdir(parents=True)
        shutil.copy(events, logs / f"events.out.tfevents.{int(T0)}.gpu.1.0")
    for step, text in states.items():
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(text)


def make_runs(root: Path, n: int, steps: int) -> dict:
    """``n`` runs under ``root``: half ours, half a Trainer's (two thirds of those with event files); in each
    half, every other run ended. Returns what was made, for the table."""
    src = root.parent / "sources"
    src.mkdir(parents=True)
    ended_events, live_events = src / "ended.jsonl", src / "live.jsonl"
    ours_events(ended_events, steps, True)
    ours_events(live_events, steps, False)
    history = hf_history(steps)
    end = {"epoch": 3.0, "step": steps, "train_loss": 0.6, "train_runtime": steps * STEP_S * 1.1}
    last = steps - steps % SAVE_EVERY
    for ended in (True, False):  # an ended run logged its end; a live one trains on towards PLANNED steps
        max_steps = steps if ended else max(steps, PLANNED)
        hf_events(src / f"hf-{ended}.tfevents", history + ([end] if ended else []), max_steps)
        for s in (last - SAVE_EVERY, last):
            (src / f"state-{ended}-{s}.json").write_text(hf_state(history, s, max_steps,
                                                                 end if ended and s == last else None))
    made = {"ours": 0, "hf_events": 0, "hf_state_only": 0, "live": []}
    for i in range(n // 2):
        ended = i % 2 == 0
        ours_run(root / f"ours-{i:02d}", ended_events if ended else live_events, steps, ended)
        made["ours"] += 1
        made["live"] += [] if ended else [f"ours-{i:02d}"]
    for i in range(n - n // 2):
        ended, with_events = i % 2 == 0, i % 3 != 2
        states = {s: (src / f"state-{ended}-{s}.json").read_text() for s in (last - SAVE_EVERY, last)}
        hf_run(root / f"hf-{i:02d}", src / f"hf-{ended}.tfevents" if with_events else None, states)
        made["hf_events" if with_events else "hf_state_only"] += 1
        made["live"] += [] if ended else [f"hf-{i:02d}"]
    made["bytes"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    made["sizes"] = {"ours events.jsonl": live_events.stat().st_size,
                     "TensorBoard file": (src / "hf-False.tfevents").stat().st_size,
                     "trainer_state.json": (src / f"state-False-{last}.json").stat().st_size}
    return made


# ---- the measures ----------------------------------------------------------------------------------------

def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def timed_run(argv: list[str], repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of a fresh process, start to exit."""
    times, cpus = [], []
    for _ in range(repeats):
        c, t = _children_cpu(), time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=300, env=ENV)
        times.append(time.perf_counter() - t)
        cpus.append(_children_cpu() - c)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
    return statistics.median(times), statistics.median(cpus)


def console_times(root: Path, n: int, repeats: int) -> tuple[float, float, float]:
    """(median first frame, its CPU seconds, whole history loaded) in seconds from process start."""
    firsts, cpus, alls = [], [], []
    for k in range(repeats + 1):
        mode = "all" if k == 0 else "first"
        c = _children_cpu()
        proc = subprocess.run([sys.executable, "-c", CONSOLE, str(root), repr(time.time()), str(n), mode], cwd=ROOT,
                              capture_output=True, text=True, timeout=600, env=ENV)
        out = {line.split()[0]: float(line.split()[1]) for line in proc.stdout.splitlines() if line[:1].isupper()}
        if "FIRST_FRAME" not in out:
            raise RuntimeError(proc.stderr[-2000:])
        if mode == "first":  # the process ends at its first frame: its CPU is the first frame's
            firsts.append(out["FIRST_FRAME"])
            cpus.append(_children_cpu() - c)
        if "ALL_LOADED" in out:
            alls.append(out["ALL_LOADED"])
    return statistics.median(firsts), statistics.median(cpus), (alls[0] if alls else float("nan"))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench many_runs")
    ap.add_argument("--runs", type=int, default=24)
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="generate the runs there (once) and keep them, instead of a temp dir")
    args = ap.parse_args(argv)
    tmp = None
    if args.keep:
        base = Path(args.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="kidconsole-bench-many-")
        base = Path(tmp.name)
    root = base / "runs"
    try:
        t = time.perf_counter()
        made = json.loads((base / "made.json").read_text()) if (root.is_dir() and (base / "made.json").exists()) \
            else None
        if made is None:
            shutil.rmtree(base, ignore_errors=True)
            made = make_runs(root, args.runs, args.steps)
            (base / "made.json").write_text(json.dumps(made))
        made_s = time.perf_counter() - t
        bring_to_life(root, made["live"])
        load0 = os.getloadavg()
        empty = base / "empty"
        empty.mkdir(exist_ok=True)
        ls = [sys.executable, "-m", "kidconsole", "run", "ls", "--runs"]
        timed_run([*ls, str(empty)], 1)  # compiles what the CLI imports, once
        ls_table = timed_run([*ls, str(root), "--wide"], args.repeats)
        ls_json = timed_run([*ls, str(root), "--json"], args.repeats)
        ls_empty = timed_run([*ls, str(empty)], args.repeats)
        first, first_cpu, loaded = console_times(root, args.runs, args.repeats)
        load1 = os.getloadavg()
    finally:
        if tmp is not None:
            tmp.cleanup()
    table = Table(title=f"{args.runs} runs of {args.steps:,} steps, ours and a Trainer's mixed "
                        f"({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
                        f"load average {load0[0]:.1f} before, {load1[0]:.1f} after)")
    for col, just in (("measure", "left"), ("wall", "right"), ("CPU", "right"), ("target", "right"),
                      ("note", "left")):
        table.add_column(col, justify=just)
    sizes = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in made["sizes"].items())
    table.add_row("runs", "", "", "", f"{made['ours']} ours, {made['hf_events']} Trainer folders with event files, "
                  f"{made['hf_state_only']} with trainer_state.json only; {made['bytes'] / 2**20:.0f} MiB in all "
                  f"({sizes}); made in {made_s:.0f} s")
    table.add_row("`run ls` (table), process start to exit", f"{ls_table[0]:.2f} s", f"{ls_table[1]:.2f} s", "< 1 s",
                  "a row per run from the newest part of its history")
    table.add_row("`run ls --json`, process start to exit", f"{ls_json[0]:.2f} s", f"{ls_json[1]:.2f} s", "< 1 s", "")
    table.add_row("`run ls` on an empty runs root", f"{ls_empty[0]:.2f} s", f"{ls_empty[1]:.2f} s", "",
                  "the CLI's own start: Python, imports, the parser")
    table.add_row("console first frame, process start", f"{first:.2f} s", f"{first_cpu:.2f} s", "< 2 s",
                  f"all {args.runs} cards with their newest history")
    table.add_row("console, every run's whole history loaded", f"{loaded:.1f} s", "", "",
                  "loaded newest first after the first frame")
    Console(width=160).print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
