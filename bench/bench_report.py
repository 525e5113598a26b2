"""Error report throughput: read, align, bucket and render 100,000 test predictions,
then compare with a second run (speaker bootstrap).

The predictions mimic a children's test set: words drawn from a Zipf-distributed
vocabulary (prompted speech repeats words), about 30 phones an utterance, 2,000
speakers, and hypotheses with ~15% phone errors, word-initial phones dropped more
often. ``python -m bench report [--n 100000] [--bootstrap 1000]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

TARGET_S = 10.0  # the whole report over 100,000 utterances


def write_predictions(path: Path, n: int, seed: int, hyp_seed: int, err: float, speakers: int = 2000,
                      vocabulary: int = 5000) -> None:
    from kidconsole.phonemes import PHONES

    rng = random.Random(seed)
    hrng = random.Random(hyp_seed)
    words = [[rng.choice(PHONES) for _ in range(rng.randint(1, 6))] for _ in range(vocabulary)]
    weights = [1 / (k + 1) for k in range(vocabulary)]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            ref_words = rng.choices(words, weights, k=rng.randint(5, 11))
            hyp = []
            for w in ref_words:
                hw = []
                for j, p in enumerate(w):
                    x = hrng.random()
                    if x < err * (2 if j == 0 else 1) / 3:
                        continue
                    hw.append(hrng.choice(PHONES) if x < 2 * err / 3 else p)
                    if hrng.random() < err / 6:
                        hw.append(hrng.choice(PHONES))
                hyp.append(" ".join(hw))
            spk = rng.randrange(speakers)
            fh.write(json.dumps({
                "id": f"utt{i:06d}", "speaker": f"spk{spk:04d}", "age": 3 + spk % 10, "age_range": None,
                "gender": "MF"[spk % 2], "snr": round(rng.uniform(0, 40), 1),
                "duration": round(rng.uniform(0.5, 12), 2), "split": "test",
                "ref": " | ".join(" ".join(w) for w in ref_words), "hyp": " | ".join(hyp)}) + "\n")


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from kidconsole.report.compare import compare
    from kidconsole.report.predictions import read_predictions
    from kidconsole.report.render import to_json, to_markdown
    from kidconsole.report.summary import build_report

    parser = argparse.ArgumentParser(prog="bench report")
    parser.add_argument("--n", type=int, default=100_000, help="utterances")
    parser.add_argument("--bootstrap", type=int, default=1000, help="speaker resamples")
    args = parser.parse_args(argv)

    rows = []

    def timed(label: str, fn):
        start, cpu = time.perf_counter(), time.process_time()
        value = fn()
        rows.append((label, time.perf_counter() - start, time.process_time() - cpu))
        return value

    with tempfile.TemporaryDirectory() as tmp:
        a_path, b_path = Path(tmp) / "a.jsonl", Path(tmp) / "b.jsonl"
        write_predictions(a_path, args.n, seed=1, hyp_seed=2, err=0.15)
        write_predictions(b_path, args.n, seed=1, hyp_seed=3, err=0.13)
        preds = timed("read predictions.jsonl", lambda: read_predictions(a_path))
        rep = timed("align (PER, CER, WER) + buckets + phones", lambda: build_report(preds))
        timed("render Markdown", lambda: to_markdown(rep))
        timed("render JSON", lambda: to_json(rep))
        report_s = sum(s for _, s, _ in rows)
        report_cpu = sum(c for _, _, c in rows)
        other = timed("reference run: read + align + buckets + phones",
                      lambda: build_report(read_predictions(b_path)))
        comp = timed(f"compare: {args.bootstrap} speaker resamples x 3 metrics",
                     lambda: compare(rep.analysis, other.analysis, metrics=("per", "cer", "wer"),
                                     n_boot=args.bootstrap))

    n_phones = int(rep.analysis.counts[:, 0, :3].sum())
    table = Table(title=f"Error report: {args.n:,} utterances, {n_phones / args.n:.1f} phones each, "
                  f"{rep.overall.speakers:,} speakers ({os.cpu_count()} cores)")
    table.add_column("stage")
    table.add_column("wall s", justify="right")
    table.add_column("CPU s", justify="right")
    table.add_column("utterances/s (wall)", justify="right")
    for label, secs, cpu in rows:
        table.add_row(label, f"{secs:.2f}", f"{cpu:.2f}", f"{args.n / secs:,.0f}")
    ok = "under" if report_s < TARGET_S else "OVER"
    table.add_row(f"report (read + compute + render), {ok} {TARGET_S:g} s",
                  f"{report_s:.2f}", f"{report_cpu:.2f}", f"{args.n / report_s:,.0f}", style="bold")
    table.caption = (f"load average {os.getloadavg()[0]:.1f} on the shared machine; PER {100 * rep.overall.rate('per'):.2f}%, {len(comp.deltas)} bucket deltas, "
                     f"{sum(d.significant for d in comp.deltas)} significant")
    Console().print(table)
