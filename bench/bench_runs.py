"""Run reading: open a run with a 1,000,000-line events file, then refresh.

Figures: time to the first chart (open + first poll + a 200-bucket downsample),
time to load the whole history (wall and CPU seconds: the machine may be shared),
the same with unusable lines spread through it (each checked batch that holds
one is folded again without it), the cost of a refresh with 0, 100 and 10,000
new lines (proportional to the new bytes), and a 1,000,000-point downsample.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kidconsole import rundir
from kidconsole.runs.reader import RunReader

# one of each kind of line a reader must skip (tests/runs/test_reader.py has the full list)
UNUSABLE = (b'{"t":1.7e9,"kind":"train","step":1,"loss":' + b"7" * 400 + b"}",
            b'{"t":1.7e9,"kind":"train","step":1,"loss":"0.5"}', b"[1,2]", b"}{ not json")


def train_line(i: int, t0: float) -> str:
    return json.dumps({"t": round(t0 + i * 0.7, 3), "kind": "train", "step": i, "phase": 1 + i // 400_000,
                       "epoch": i // 100_000, "loss": round(2.0 / (1 + i / 1000) + random.random() * 0.05, 6),
                       "lr": 1e-4, "grad_norm": round(1 + random.random(), 4), "samples_per_s": 48.5,
                       "samples": i * 32, "audio_seconds": i * 32 * 4.1, "padding": 0.12,
                       "total_steps": 1_500_000}, separators=(",", ":"))


def write_events(path: Path, n: int) -> None:
    t0 = 1_700_000_000.0
    with open(path, "w") as fh:
        for i in range(1, n + 1):
            fh.write(train_line(i, t0) + "\n")
            if i % 5000 == 0:
                fh.write(json.dumps({"t": t0 + i * 0.7, "kind": "eval", "step": i, "loss": 1.0, "per": 0.3,
                                     "cer": 0.2, "wer": 0.5}) + "\n")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def timed_cpu(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def with_unusable_lines(run: Path, other: Path, every: int) -> Path:
    """A copy of ``run`` with an unusable line after every ``every`` lines of its events."""
    other.mkdir()
    lines = (run / rundir.EVENTS).read_bytes().split(b"\n")
    with open(other / rundir.EVENTS, "wb") as fh:
        for k in range(0, len(lines) - 1, every):
            fh.write(b"\n".join(lines[k:k + every]) + b"\n" + UNUSABLE[(k // every) % len(UNUSABLE)] + b"\n")
    return other


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench runs")
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    random.seed(0)
    table = Table(title=f"runs: reading a {args.lines:,}-line events.jsonl "
                        f"({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()})")
    for col in ("measure", "time", "note"):
        table.add_column(col, justify="right" if col == "time" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        events = run / rundir.EVENTS
        write_events(events, args.lines)
        size = events.stat().st_size

        def first_chart():
            r = RunReader(run)
            r.poll()
            return r, r.series["train/loss"].downsample(200)

        dt, (reader, _) = timed(first_chart)
        table.add_row("open + first chart", f"{dt * 1000:.0f} ms",
                      f"newest {len(reader.series['train/loss']):,} steps; history loads on later polls (< 2 s)")
        dt, cpu, _ = timed_cpu(reader.load_all)
        table.add_row("whole history loaded", f"{dt:.2f} s", f"{cpu:.2f} s CPU; {size / 2**20:.0f} MiB, "
                      f"{reader.n_events:,} events")
        poisoned = RunReader(with_unusable_lines(run, Path(tmp) / "poisoned", every=10_000))
        poisoned.poll()
        dt, cpu, _ = timed_cpu(poisoned.load_all)
        table.add_row("whole history, 1 unusable line in 10,000", f"{dt:.2f} s",
                      f"{cpu:.2f} s CPU; {poisoned.bad_lines:,} lines skipped and counted")
        step = args.lines
        for new in (0, 100, 10_000):
            with open(events, "a") as fh:
                for i in range(new):
                    step += 1
                    fh.write(train_line(step, 1_700_000_000.0) + "\n")
            dt, n = timed(reader.poll)
            assert n == new
            table.add_row(f"refresh, {new:,} new lines", f"{dt * 1000:.2f} ms",
                          f"{dt / new * 1e6:.1f} us a line" if new else "nothing new")
        s = reader.series["train/loss"]
        dt, _ = timed(lambda: s.downsample(200))
        table.add_row(f"downsample {len(s):,} points to 200", f"{dt * 1000:.2f} ms", "min/max per bucket")
        dt, _ = timed(lambda: s.downsample(200, s.x[0], s.x[len(s) // 10]))
        table.add_row("zoomed downsample (first 10%)", f"{dt * 1000:.2f} ms", "")
    Console().print(table)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
