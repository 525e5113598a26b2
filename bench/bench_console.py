"""Console benchmarks: time to first frame, CPU while runs grow (2 runs, and 4 of a sweep of 24), chart
redraw at 1M points per run.

- first frame: a fresh ``python`` process opens the console (headless) on two
  recorded runs, and on a sweep of 24 (the recordings replayed 12 times each,
  ``kidconsole.tui.replay.replay_sweep``); measured from process start to the
  first frame with every run and its history.
- CPU: the console (headless, its own process) watches runs of which two (of 2)
  or four (of 24) each get 10 events/s for ``--seconds`` (default 60); CPU time
  of that process / wall time.
- chart redraw: two runs of 1,000,000 train-loss points each; one redraw =
  downsample raw + EMA of both to the chart's width, then render (160x40 cells).

``python -m bench console [--seconds 60]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kidconsole import rundir

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = ROOT / "tests" / "console" / "recordings"
SWEEP, SWEEP_GROWING = 24, 4  # a sweep's runs on the dashboard, and how many of them grow meanwhile

CONSOLE_SCRIPT = textwrap.dedent("""
    import sys, time
    t0 = float(sys.argv[2])
    from kidconsole.tui.app import KidConsole

    class Bench(KidConsole):
        def on_runs_updated(self, message):
            super().on_runs_updated(message)
            if not getattr(self, "_first", None) and len(self.views) >= int(sys.argv[4]):
                if all(v.step is not None for v in self.views.values()):
                    self._first = True
                    self.call_after_refresh(self._frame)

        def _frame(self):
            print(f"FIRST_FRAME {time.time() - t0:.4f}", file=sys.__stdout__, flush=True)
            if sys.argv[3] == "exit":
                self.exit()

    Bench([sys.argv[1]]).run(headless=True)
""")


def _spawn(runs: Path, mode: str) -> subprocess.Popen:
    n = len(list(runs.glob(f"*/{rundir.EVENTS}")))
    return subprocess.Popen([sys.executable, "-c", CONSOLE_SCRIPT, str(runs), repr(time.time()), mode, str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)


def first_frame(runs: Path, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        proc = _spawn(runs, "exit")
        out, _ = proc.communicate(timeout=60)
        times.append(float(next(line.split()[1] for line in out.splitlines() if line.startswith("FIRST_FRAME"))))
    return statistics.median(times)


def cpu_while_growing(runs: Path, seconds: float, rate: float = 10.0, growing: int | None = None
                      ) -> tuple[float, int]:
    """Average CPU share (of one core) of the console while ``growing`` runs (all by default) each get
    ``rate`` events/s."""
    import psutil

    proc = _spawn(runs, "stay")
    try:
        proc.stdout.readline()  # first frame: history loaded
        ps = psutil.Process(proc.pid)
        files = sorted(runs.glob(f"*/{rundir.EVENTS}"))[:growing]
        steps = {f: 10_000 for f in files}
        c0, t0 = ps.cpu_times(), time.monotonic()
        written, tick = 0, 1.0 / rate
        next_at = t0
        while time.monotonic() - t0 < seconds:
            next_at += tick
            for f in files:
                steps[f] += 10
                line = {"t": round(time.time(), 3), "kind": "train", "step": steps[f], "phase": 2, "epoch": 1,
                        "loss": 0.5, "lr": 1e-4, "grad_norm": 1.0, "samples_per_s": 60.0,
                        "samples": steps[f] * 16, "total_steps": 60_000}
                with f.open("a") as fh:
                    fh.write(json.dumps(line) + "\n")
                written += 1
            time.sleep(max(0.0, next_at - time.monotonic()))
        c1, t1 = ps.cpu_times(), time.monotonic()
        return ((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0), written
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def chart_redraw(points: int = 1_000_000, width: int = 160, height: int = 40, repeats: int = 20) -> tuple[float, float]:
    """(median ms per redraw, ms to smooth both runs once) at ``points`` points per run."""
    import numpy as np

    from kidconsole.palette import RUN_COLORS
    from kidconsole.runs.series import Series
    from kidconsole.tui.smoothing import DebiasedEma
    from kidconsole.tui.widgets.chart import ChartData, Trace, plot_columns, render_chart

    rng = np.random.default_rng(0)
    runs = []
    t = time.perf_counter()
    for k in range(2):
        x = np.arange(1, points + 1, dtype=float)
        y = 0.4 + 2 * np.exp(-x / (points / 5)) + rng.normal(0, 0.1, points)
        runs.append((Series(x, y), Series(x, DebiasedEma(0.99).extend(y)), RUN_COLORS[k]))
    smooth_ms = (time.perf_counter() - t) * 1000
    n = plot_columns(width)
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        data = ChartData(x_range=(1, points))
        for raw, smooth, color in runs:
            xs, lo, hi = raw.downsample(n, 1, points)
            sx, slo, shi = (np.asarray(a) for a in smooth.downsample(n, 1, points))
            data.traces += [Trace(xs, lo, hi, color, faint=True), Trace(sx, (slo + shi) / 2, (slo + shi) / 2, color)]
        render_chart(data, "train loss", width, height)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), smooth_ms


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench console")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the CPU measurement")
    args = parser.parse_args(argv)
    from kidconsole.tui.replay import replay_all, replay_sweep

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        replay_all(RECORDINGS, runs, start=10**9)
        first = first_frame(runs)
        cpu, written = cpu_while_growing(runs, args.seconds)
        sweep = Path(tmp) / "sweep"
        replay_sweep(RECORDINGS, sweep, SWEEP)
        first_sweep = first_frame(sweep)
        cpu_sweep, written_sweep = cpu_while_growing(sweep, args.seconds, growing=SWEEP_GROWING)
    redraw_ms, smooth_ms = chart_redraw()

    table = Table(title=f"console ({os.cpu_count()} cores)")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("target", justify="right")
    table.add_row("time to first frame (process start, 2 runs)", f"{first:.2f} s", "~1 s")
    table.add_row(f"console CPU, 2 runs x 10 events/s for {args.seconds:.0f} s ({written} events)",
                  f"{cpu:.1%} of a core", "< 3%")
    table.add_row(f"time to first frame (process start, {SWEEP} runs)", f"{first_sweep:.2f} s", "< 1.5 s")
    table.add_row(f"console CPU, {SWEEP_GROWING} of {SWEEP} runs x 10 events/s for {args.seconds:.0f} s "
                  f"({written_sweep} events)", f"{cpu_sweep:.1%} of a core", "< 5%")
    table.add_row("chart redraw, 2 runs x 1,000,000 points, 160x40", f"{redraw_ms:.1f} ms", "< 50 ms")
    table.add_row("one-time EMA of 2 x 1,000,000 points (+ series build)", f"{smooth_ms:.0f} ms", "")
    Console().print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
