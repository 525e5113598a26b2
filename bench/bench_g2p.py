"""G2P throughput: cold conversion on 1..N processes, warm-cache batches and lookups.

The transcript list mimics a children's read-speech corpus: a few thousand
prompts, each read by many speakers (Zipf-distributed repetition), with some
AI Hub markup. ``python -m bench g2p [--n 20000] [--processes 1 2]``
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

TIMES = ["", "오늘", "어제", "아침에", "주말에", "n/ 내일", "방학 때", "저녁에"]
SUBJECTS = ["나는", "우리 엄마는", "친구가", "선생님께서", "동생이", "강아지가", "할머니는",
            "우리 반 아이들이", "아빠가", "고양이가", "형이", "누나는", "옆집 아저씨가",
            "토끼가", "곰돌이가", "3학년 언니가"]
OBJECTS = ["맛있는 떡볶이를", "학교 운동장에서", "닭을", "빨간 꽃을", "책을 열심히",
           "숙제를 같이", "밥을 많이", "새 신발을", "놀이터에서 공을", "편지를 천천히",
           "과자 두 개를", "무늬 없는 옷을", "물감으로 그림을", "흙 속에서 벌레를",
           "(10)/(열) 권의 책을", "종이비행기를"]
VERBS = ["먹었어요", "좋아해요", "찾았다", "읽고 싶어", "만들었습니다", "잃어버렸어", "보고 있어요",
         "놓아두었다", "가지고 놀았어요", "밟지 않았어", "싫어하지 않아요", "던졌다", "그렸어요",
         "기다렸어요.", "b/ 잡았어요", "*봤어요*"]


def transcripts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    prompts = [f"{t} {s} {o} {v}".strip() for t in TIMES for s in SUBJECTS for o in OBJECTS
               for v in VERBS]
    rng.shuffle(prompts)
    weights = [1.0 / (rank + 1) for rank in range(len(prompts))]
    return rng.choices(prompts, weights=weights, k=n)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the workers)."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from kidconsole.g2p import G2PCache, convert_many, normalize_transcript
    from kidconsole.g2p.engine import get_g2p

    parser = argparse.ArgumentParser(prog="bench g2p")
    parser.add_argument("--n", type=int, default=20_000, help="transcripts in the list")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)

    texts = transcripts(args.n)
    unique = len(set(map(normalize_transcript, texts)))
    load = os.getloadavg()[0]  # other work on the machine skews the cold rows
    table = Table(title=f"G2P: {len(texts):,} transcripts, {unique:,} distinct "
                  f"({os.cpu_count()} cores, load average {load:.1f} at start)")
    for col in ("measure", "processes", "seconds", "CPU s", "transcripts/s",
                "distinct converted/s"):
        table.add_column(col, justify="left" if col == "measure" else "right")

    load_s, _ = _timed(get_g2p)
    table.add_row("load g2pK (once per process)", "1", f"{load_s:.2f}", "", "", "")

    with tempfile.TemporaryDirectory() as tmp:
        for procs in args.processes:
            path = Path(tmp) / f"cold-{procs}.sqlite"
            cpu = _cpu_seconds()
            secs, results = _timed(lambda: convert_many(texts, cache=path, processes=procs,
                                                        progress=False))
            cpu = _cpu_seconds() - cpu
            note = " (incl. worker start)" if procs > 1 else ""
            table.add_row(f"cold{note}", str(procs), f"{secs:.2f}", f"{cpu:.1f}",
                          f"{len(texts) / secs:,.0f}", f"{unique / secs:,.1f}")
        failed = sum(r.error is not None for r in results)

        warm_path = Path(tmp) / f"cold-{args.processes[-1]}.sqlite"
        rounds = 5
        secs, _ = _timed(lambda: [convert_many(texts, cache=warm_path, progress=False)
                                  for _ in range(rounds)])
        table.add_row("warm cache, convert_many", "1", f"{secs / rounds:.3f}", "",
                      f"{rounds * len(texts) / secs:,.0f}", "")

        keys = sorted(set(map(normalize_transcript, texts)))
        lookups = keys * max(1, 100_000 // len(keys))
        with G2PCache(warm_path) as cache:
            secs, found = _timed(lambda: cache.get_many(lookups))
        table.add_row(f"warm cache, raw lookups ({len(lookups):,})", "1", f"{secs:.3f}", "",
                      f"{len(lookups) / secs:,.0f}", "")

    Console().print(table)
    Console().print("CPU s: all processes together; CPU s / seconds is how many cores the "
                    "run actually got (other work on the machine takes the rest).")
    Console().print(f"{failed} of {len(texts):,} transcripts could not be converted")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
