"""Live streams: N concurrent real-time clients of ``/v1/stream``, latency, real-time factor, PER against offline.

``kidconsole serve`` with the demo's base model (bench/speech_model.py) on a
loopback port; each client (an asyncio task, one WebSocket each, on the same
cores) streams its own recording of the adult test utterances (``kidconsole
corpus long``: 0.8-1.5 s of silence before each, noise std 0.003) in 100 ms
chunks at real-time pace for ``--seconds``, the server's VAD ending the
utterances. Measured per step of N streams: the latency from the sending of
the chunk that a partial's decode ends with to the partial's arrival; from the
end of an utterance (where it was placed; the end of speech) to its final, and
from the end the VAD gave the final (``end``, the speech plus its 0.1 s pad) to
its arrival (p50 / p95); the server's CPU seconds over the audio seconds
streamed (its real-time factor, partial re-decodes included); and the PER of
the finals (each given to the utterance it overlaps most) against the offline
per-utterance decodes of the same utterances (target: within 1 point). A step
holds N streams when the end-of-speech-to-final p95 is under 500 ms. Then the
same streams push-to-talk (``?vad=0``, the end message sent as each
utterance's audio has been): the latency from the end message to its final.
``python -m bench stream [--streams 1 2 4 8 --seconds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.speech_model import add_model_arguments, model_and_manifest

REPO = Path(__file__).resolve().parents[1]
CHUNK = 1600  # 100 ms at 16 kHz


def _pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


async def _client(url: str, pcm: np.ndarray, seconds: float, ends: list[float] | None = None) -> dict:
    """One real-time stream; ``ends``: push-to-talk, the end message sent as each utterance's audio is sent."""
    import websockets

    n = min(len(pcm), int(seconds * 16000)) // CHUNK
    sent = np.zeros(n)
    messages: list[dict] = []
    end_sent: list[float] = []
    async with websockets.connect(url, max_size=2 ** 20) as ws:
        await ws.recv()  # ready
        loop = asyncio.get_running_loop()
        pending = sorted(e for e in (ends or []) if e <= n * CHUNK / 16000)

        async def send():
            t0 = loop.time()
            for k in range(n):
                await ws.send(pcm[k * CHUNK:(k + 1) * CHUNK].tobytes())
                sent[k] = time.perf_counter()
                while pending and pending[0] <= (k + 1) * CHUNK / 16000:
                    pending.pop(0)
                    await ws.send(json.dumps({"type": "end"}))
                    end_sent.append(time.perf_counter())
                await asyncio.sleep(max(0.0, t0 + (k + 1) * CHUNK / 16000 - loop.time()))
            await ws.send(json.dumps({"type": "end"}))

        sender = asyncio.create_task(send())
        async for raw in ws:
            m = json.loads(raw)
            m["t"] = time.perf_counter()
            messages.append(m)
            if m["type"] == "end":
                break
        await sender
    return {"sent": sent, "messages": messages, "seconds": n * CHUNK / 16000, "end_sent": end_sent}


def _sent_at(sent: np.ndarray, seconds: float) -> float | None:
    """When the chunk holding the sample just before ``seconds`` was sent."""
    k = math.ceil(round(seconds * 16000) / CHUNK) - 1
    return float(sent[k]) if 0 <= k < len(sent) else None


def _measure(result: dict, placed) -> dict:
    sent, msgs = result["sent"], result["messages"]
    partial = [m["t"] - t for m in msgs if m["type"] == "partial" and (t := _sent_at(sent, m["end"])) is not None]
    finals = [m for m in msgs if m["type"] == "final"]
    heard = [p for p in placed if p.end <= result["seconds"]]
    from_speech, from_vad, assigned = [], [], {k: [] for k in range(len(heard))}
    for f in finals:
        if (t := _sent_at(sent, f["end"])) is not None and f["reason"] == "vad":
            from_vad.append(f["t"] - t)
        overlaps = [min(f["end"], p.end) - max(f["start"], p.start) for p in heard]
        if overlaps and max(overlaps) > 0:
            k = int(np.argmax(overlaps))
            assigned[k].append(f)
    for k, p in enumerate(heard):
        last = [f for f in assigned[k] if f["reason"] == "vad"]
        if last and (t := _sent_at(sent, p.end)) is not None:
            from_speech.append(last[-1]["t"] - t)
    # push-to-talk: the k-th end message's final is the k-th final of reason "client" with phones or not
    client = [f for f in finals if f["reason"] == "client"]
    from_end = [f["t"] - t for f, t in zip(client, result["end_sent"])]
    return {"partial": partial, "from_speech": from_speech, "from_vad": from_vad, "from_end": from_end,
            "heard": heard, "assigned": assigned}


def _start_server(model: Path, log: Path, streams: int) -> tuple[subprocess.Popen, str]:
    import httpx

    from kidconsole.runs.launch import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kidconsole", "serve", str(model), "--port", str(port),
                             "--log-level", "warning", "--max-streams", str(max(streams, 16))], cwd=REPO,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()["status"] == "ok":
                return proc, f"ws://127.0.0.1:{port}/v1/stream"
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not come up")


def main(argv: list[str]) -> None:
    import psutil
    import soundfile as sf

    ap = argparse.ArgumentParser(prog="python -m bench stream", description=__doc__)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--seconds", type=float, default=20.0, help="audio each stream sends per step (default 20)")
    add_model_arguments(ap)
    args = ap.parse_args(argv)

    from bench.bench_long import records, transcribe
    from kidconsole.corpus.longrec import long_recording
    from kidconsole.metrics import count_errors, phone_tokens
    from trainers.segment import join_phones

    model, test = model_and_manifest(args)
    rows = []
    refs, streamed, offline_hyps = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        tmp = Path(tmp)
        transcribe(model, [str(test)], tmp / "offline.jsonl")
        offline = {r["id"]: r.get("phones", "") for r in records(tmp / "offline.jsonl")}
        recordings = []
        for k in range(max(args.streams)):
            wav = tmp / f"stream-{k}.wav"
            placed = long_recording(test, wav, minutes=args.seconds / 60 + 0.1, seed=k, gap=(0.8, 1.5))
            pcm, _ = sf.read(str(wav), dtype="int16")
            recordings.append((pcm, placed))
        proc, url = _start_server(model, tmp / "serve.log", max(args.streams))
        server = psutil.Process(proc.pid)
        try:
            asyncio.run(_client(url, recordings[0][0], 3.0))  # warm-up
            for n in args.streams:
                cpu0 = sum(server.cpu_times()[:2])
                results = asyncio.run(_gather(url, recordings[:n], args.seconds))
                cpu = sum(server.cpu_times()[:2]) - cpu0
                measured = [_measure(r, placed) for r, (_, placed) in zip(results, recordings)]
                audio = sum(r["seconds"] for r in results)
                row = {"n": n, "rtf": cpu / audio, "load": os.getloadavg()[0]}
                # push-to-talk: the VAD off, an end message as each utterance's audio has been sent
                ptt = asyncio.run(_gather(url.replace("/v1/stream", "/v1/stream?vad=0"), recordings[:n],
                                          args.seconds, push_to_talk=True))
                measured_ptt = [_measure(r, placed) for r, (_, placed) in zip(ptt, recordings)]
                for key in ("partial", "from_speech", "from_vad"):
                    values = [1000 * v for m in measured for v in m[key]]
                    row[key] = (_pct(values, 50), _pct(values, 95), len(values))
                values = [1000 * v for m in measured_ptt for v in m["from_end"]]
                row["from_end"] = (_pct(values, 50), _pct(values, 95), len(values))
                for m in measured:
                    for k, p in enumerate(m["heard"]):
                        refs.append(phone_tokens(p.phones))
                        streamed.append(phone_tokens(join_phones([f["phones"] for f in m["assigned"][k]])))
                        offline_hyps.append(phone_tokens(offline[p.source]))
                rows.append(row)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)

    per_stream, per_offline = count_errors(refs, streamed).rate, count_errors(refs, offline_hyps).rate
    held = max((r["n"] for r in rows if r["from_speech"][1] < 500), default=0)
    con = Console(width=max(Console().width, 170))
    table = Table(title=f"/v1/stream: N concurrent real-time streams (demo base model, 100 ms chunks, VAD ends "
                        f"utterances, {args.seconds:g} s a stream; {os.cpu_count()} cores shared by server, clients "
                        f"and other jobs)")
    for col in ("streams", "partial p50 ms", "p95", "speech end->final p50", "p95", "VAD end->final p50", "p95",
                "finals", "end msg->final p50", "p95", "server RTF", "load avg"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["n"]), f"{r['partial'][0]:.0f}", f"{r['partial'][1]:.0f}", f"{r['from_speech'][0]:.0f}",
                      f"{r['from_speech'][1]:.0f}", f"{r['from_vad'][0]:.0f}", f"{r['from_vad'][1]:.0f}",
                      str(r["from_vad"][2]), f"{r['from_end'][0]:.0f}", f"{r['from_end'][1]:.0f}",
                      f"{r['rtf']:.3f}", f"{r['load']:.1f}")
    table.caption = (f"holds {held} concurrent streams with the final under 500 ms p95 after the end of speech; "
                     f"PER of the streamed finals {100 * per_stream:.2f}% vs the offline per-utterance decodes "
                     f"{100 * per_offline:.2f}% ({100 * (per_stream - per_offline):+.2f} points, target within 1) "
                     f"over {len(refs)} utterances")
    con.print(table)


async def _gather(url: str, recordings, seconds: float, push_to_talk: bool = False) -> list[dict]:
    return await asyncio.gather(*(_client(url, pcm, seconds, [p.end for p in placed] if push_to_talk else None)
                                  for pcm, placed in recordings))
