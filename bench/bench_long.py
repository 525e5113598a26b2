"""Long recordings: ``kidconsole transcribe`` on recordings of 10 s to 60 min made of the test split's utterances.

The demo's base model (bench/speech_model.py: trained on the synthetic adult
voices) transcribes the adult test split one utterance at a time (the
reference path), then recordings that ``kidconsole corpus long`` makes of the
same utterances, cycled, with 1-3 s of silence before each (each utterance on
the 20 ms frame grid) under white noise (std 0.003): the long path (Silero VAD segments, chunks of 20 s with 3.3 s of
stride). Each segment is given to the utterance it overlaps most; an
utterance's decode is its segments' phones; a segment over no utterance counts
as insertions. Reported: PER of the long path against the per-utterance decodes
of the same utterances (target: within 1 point), segment boundary error (the
segments of an utterance against where it was placed, whose own edges hold
0.1-0.3 s of the synthesiser's silence), utterances split, merged, missed;
peak memory (each length in a fresh process) and real-time factor. One thread.
``python -m bench long [--minutes 10 --long-minutes 60]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.speech_model import add_model_arguments, model_and_manifest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
MEASURE = """
import json, resource, sys, time
from kidconsole.cli import main
t0 = time.perf_counter()
code = main(["transcribe", *sys.argv[1:], "--no-progress"])
print(json.dumps({"code": code, "wall": time.perf_counter() - t0,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def transcribe(model: Path, inputs: list[str], out: Path, *extra: str) -> dict:
    """``kidconsole transcribe`` in a fresh process: its wall time and peak memory; the records in ``out``."""
    done = subprocess.run([sys.executable, "-c", MEASURE, str(model), *inputs, "-o", str(out), *extra], cwd=REPO,
                          env=ENV, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"transcribe failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(long_record: dict, placed, per_utt: dict[str, str]) -> dict:
    """PER of the long path and of the per-utterance decodes over the placed utterances, and the segmentation."""
    from kidconsole.metrics import count_errors, phone_tokens
    from trainers.segment import join_phones

    segments = long_record.get("segments") or [  # no longer than a chunk: decoded whole, one segment
        {"start": 0.0, "end": long_record["duration"], "phones": long_record["phones"]}]
    mine: dict[int, list[dict]] = {k: [] for k in range(len(placed))}
    false = []
    for seg in segments:
        overlaps = [min(seg["end"], p.end) - max(seg["start"], p.start) for p in placed]
        best = int(np.argmax(overlaps)) if overlaps else -1
        (mine[best] if best >= 0 and overlaps[best] > 0 else false).append(seg)
    merged = sum(1 for seg in segments if sum(min(seg["end"], p.end) > max(seg["start"], p.start) for p in placed) > 1)
    refs = [phone_tokens(p.phones) for p in placed] + [[] for _ in false]
    hyps = [phone_tokens(join_phones([s["phones"] for s in mine[k]])) for k in range(len(placed))]
    hyps += [phone_tokens(s["phones"]) for s in false]
    offline = [phone_tokens(per_utt[p.source]) for p in placed]
    starts = [abs(mine[k][0]["start"] - p.start) for k, p in enumerate(placed) if mine[k]]
    ends = [abs(mine[k][-1]["end"] - p.end) for k, p in enumerate(placed) if mine[k]]
    # the recording's phones against all its references in order: fair to --no-vad too, whose pieces span
    # several utterances (by segment, the utterances beside the one a piece is given to would count as deleted)
    whole = count_errors([[t for p in placed for t in phone_tokens(p.phones)]], [phone_tokens(long_record["phones"])])
    return {"per_long": whole.rate, "per_by_segment": count_errors(refs, hyps).rate,
            "per_utt": count_errors(refs[:len(placed)], offline).rate,
            "utterances": len(placed), "segments": len(segments), "split": sum(len(v) > 1 for v in mine.values()),
            "merged": merged, "missed": sum(not v for v in mine.values()), "false": len(false),
            "start_ms": 1000 * float(np.median(starts)) if starts else float("nan"),
            "end_ms": 1000 * float(np.median(ends)) if ends else float("nan"),
            "edge_p90_ms": 1000 * float(np.percentile(starts + ends, 90)) if starts else float("nan")}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench long", description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0, help="the recording scored (default 10)")
    ap.add_argument("--long-minutes", type=float, default=60.0, help="the longest one, for memory (default 60)")
    add_model_arguments(ap)
    args = ap.parse_args(argv)

    from kidconsole.corpus.longrec import long_recording
    from kidconsole.manifest import read_manifest

    model, test = model_and_manifest(args)
    n_test = sum(1 for _ in read_manifest(test))
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        tmp = Path(tmp)
        per_utt_run = transcribe(model, [str(test)], tmp / "per-utt.jsonl")
        per_utt = {r["id"]: r.get("phones", "") for r in records(tmp / "per-utt.jsonl")}
        test_seconds = sum(r.get("duration", 0) for r in records(tmp / "per-utt.jsonl"))
        rows, scored = [], {}
        # the 10 s recording with 5 s chunks, so that it takes the long path too
        for label, minutes, extra in (("10 s", 10 / 60, ("--chunk-seconds", "5")), (f"{args.minutes:g} min", args.minutes, ()),
                                      (f"{args.minutes:g} min, --no-vad", args.minutes, ("--no-vad",)),
                                      (f"{args.long_minutes:g} min", args.long_minutes, ())):
            wav = tmp / f"rec-{minutes:g}.wav"
            if not wav.exists():
                placed = long_recording(test, wav, minutes=minutes, seed=0)
            else:
                from kidconsole.corpus.longrec import read_truth
                placed = read_truth(wav)
            out = tmp / f"out-{label.replace(' ', '_').replace(',', '')}.jsonl"
            run = transcribe(model, [str(wav)], out, *extra)
            (rec,) = records(out)
            s = score(rec, placed, per_utt) if placed else {}
            if "--no-vad" in extra:  # its pieces are cut at blanks, not at pauses: no segmentation to judge
                s = {k: v for k, v in s.items() if k in ("per_long", "per_utt", "utterances")}
            rows.append((label, minutes * 60, run, s))
            scored[label] = s

    con = Console(width=max(Console().width, 160))
    table = Table(title=f"kidconsole transcribe on long recordings (demo base model, {n_test} adult test utterances "
                        f"cycled, 1-3 s gaps, noise std 0.003; 1 thread; load average {os.getloadavg()[0]:.1f})")
    for col in ("recording", "utts", "segs", "split", "merged", "missed", "false", "start err", "end err",
                "edge p90", "PER long", "PER utts", "peak MB", "RTF"):
        table.add_column(col, justify="left" if col == "recording" else "right")
    table.add_row("per-utterance decode", str(n_test), "", "", "", "", "", "", "", "", "", "",
                  f"{per_utt_run['peak'] / 2 ** 20:.0f}", f"{per_utt_run['wall'] / test_seconds:.3f}")
    for label, seconds, run, s in rows:
        cells = [str(s.get(k, "")) for k in ("utterances", "segments", "split", "merged", "missed", "false")]
        cells += [f"{s[k]:.0f} ms" if k in s else "" for k in ("start_ms", "end_ms", "edge_p90_ms")]
        cells += [f"{100 * s[k]:.2f}%" if k in s else "" for k in ("per_long", "per_utt")]
        table.add_row(label, *cells, f"{run['peak'] / 2 ** 20:.0f}", f"{run['wall'] / seconds:.3f}")
    main_row = scored[f"{args.minutes:g} min"]
    for label, seconds, run, s in rows:
        print(f"{label}: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()})}")
    gap = 100 * (main_row["per_long"] - main_row["per_utt"])
    peaks = [run["peak"] for _, _, run, _ in rows]
    table.caption = (f"{args.minutes:g} min: the long path's PER is {gap:+.2f} points from the per-utterance "
                     f"decodes' (target within 1); peak memory {peaks[0] / 2 ** 20:.0f} / {peaks[1] / 2 ** 20:.0f} / "
                     f"{peaks[-1] / 2 ** 20:.0f} MB for 10 s / {args.minutes:g} min / {args.long_minutes:g} min "
                     f"(target flat: the 10 s fills no {60:g} s forward pass, so its peak is lower by a pass's "
                     f"activations); errors: the median distance of an utterance's first segment start and last "
                     f"segment end from where it was placed; RTF: the whole command's wall time (model load "
                     f"included) over the audio")
    con.print(table)
