"""Load test of ``kidconsole serve`` over loopback with a real HTTP client (httpx), bounded in time and count.

The demo-size model (trainers.tiny: 3 x 96, the 320x encoder; random weights:
the speed does not depend on them) behind the server twice: micro-batched
(the default: up to 16 requests a pass, 5 ms wait) and one request at a time
(``--max-batch 1``). Against each, 1 and then N concurrent clients (asyncio
tasks, one connection each) post the same 3 s WAV for T seconds (or until
``--max-requests``); throughput, latency percentiles, errors (must be 0) and
the mean requests per forward pass (from /healthz). The clients run on the
same cores as the server. ``python -m bench serve [--clients 8 --seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from kidconsole.runs.launch import free_port

REPO = Path(__file__).resolve().parents[1]
SR = 16000



def _start(model: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "kidconsole", "serve", str(model), "--port", str(port),
                             "--log-level", "warning", *extra], cwd=REPO, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json()["status"] == "ok":
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not come up")


async def _load(url: str, body: bytes, clients: int, seconds: float, max_requests: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    deadline = time.perf_counter() + seconds

    async def client():
        nonlocal sent
        async with httpx.AsyncClient(timeout=60) as c:
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                t0 = time.perf_counter()
                try:
                    r = await c.post(f"{url}/v1/transcribe", content=body, headers={"Content-Type": "audio/wav"})
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:80]}")
                except httpx.HTTPError as e:
                    errors.append(repr(e))
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"requests": len(latencies), "errors": errors, "wall": wall, "latencies": latencies}


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str]) -> None:
    import httpx
    import soundfile as sf

    ap = argparse.ArgumentParser(prog="python -m bench serve", description=__doc__)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0, help="per load step (default 10)")
    ap.add_argument("--max-requests", type=int, default=5000, help="per load step (default 5000)")
    ap.add_argument("--utterance-seconds", type=float, default=3.0)
    args = ap.parse_args(argv)

    from kidconsole.demo import TINY
    from trainers.tiny import build_tiny

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_tiny(tmp / "model", **dict(TINY))
        rng = np.random.default_rng(0)
        buf = io.BytesIO()
        sf.write(buf, (0.1 * rng.standard_normal(int(args.utterance_seconds * SR))).astype(np.float32), SR,
                 format="WAV", subtype="PCM_16")
        body = buf.getvalue()
        for mode, extra in (("micro-batched", ()), ("one at a time", ("--max-batch", "1"))):
            proc, url = _start(model, tmp / f"{mode}.log", *extra)
            try:
                asyncio.run(_load(url, body, 2, 2.0, 50))  # warm-up
                for clients in (1, args.clients):
                    before = httpx.get(f"{url}/healthz").json()
                    r = asyncio.run(_load(url, body, clients, args.seconds, args.max_requests))
                    after = httpx.get(f"{url}/healthz").json()
                    passes = after["passes"] - before["passes"]
                    r.update(mode=mode, clients=clients,
                             per_pass=(after["utterances"] - before["utterances"]) / passes if passes else 0.0)
                    results.append(r)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)

    table = Table(title=f"kidconsole serve under load (demo-size model, {args.utterance_seconds:g} s WAV, "
                        f"{os.cpu_count()} cores shared by server and clients, {args.seconds:g} s per step; "
                        f"load average {os.getloadavg()[0]:.1f} at the end)")
    for col in ("mode", "clients", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "per pass"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for r in results:
        lat = [x * 1e3 for x in r["latencies"]]
        table.add_row(r["mode"], str(r["clients"]), str(r["requests"]), str(len(r["errors"])),
                      f"{r['requests'] / r['wall']:.1f}", f"{_pct(lat, 50):.1f}", f"{_pct(lat, 95):.1f}",
                      f"{_pct(lat, 99):.1f}", f"{r['per_pass']:.2f}")
    by = {(r["mode"], r["clients"]): r for r in results}
    n = args.clients
    mb, one = by[("micro-batched", n)], by[("one at a time", n)]
    gain = (mb["requests"] / mb["wall"]) / (one["requests"] / one["wall"])
    single = statistics.median(by[("micro-batched", 1)]["latencies"])
    p95 = _pct(mb["latencies"], 95)
    table.caption = (f"at {n} clients micro-batching serves {gain:.2f}x the requests of one at a time (target >= 2x); "
                     f"its p95 latency is {p95 / single:.2f}x the single-client median (target <= 2x); "
                     f"errors: {sum(len(r['errors']) for r in results)} (target 0)")
    Console(width=max(Console().width, 130)).print(table)
    for r in results:
        for e in r["errors"][:3]:
            print(f"{r['mode']} x{r['clients']}: {e}")
