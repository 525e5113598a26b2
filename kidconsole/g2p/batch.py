"""Convert many transcripts: dedupe, look up the persistent cache, convert the
rest over all cores with a Rich progress bar, store as results arrive.

Workers are started with ``spawn`` (safe next to threads, such as the
console's) and each loads its own g2pK; they only convert and return results,
the parent alone writes the cache, chunk by chunk, so an interrupted batch
keeps what it finished.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Iterator, Literal, Sequence

from kidconsole.g2p.cache import G2PCache, default_cache_path
from kidconsole.g2p.normalize import normalize_transcript
from kidconsole.g2p.transcript import G2PResult, convert_normalized, describe_failure

Row = tuple[str, str | None, str | None]  # (normalised text, phones, reason it failed)

# Below this many transcripts per process, starting a worker (about 2 s to load
# g2pK) costs more than it saves.
MIN_PER_PROCESS = 50
# The cache is written every this many rows or seconds, whichever comes first.
WRITE_EVERY_ROWS = 5000
WRITE_EVERY_S = 10.0


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _convert_chunk(texts: list[str]) -> list[Row]:
    return [(t, *convert_normalized(t)) for t in texts]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _converted(missing: list[str], processes: int) -> Iterator[list[Row]]:
    """Chunks of converted rows, in any order."""
    if processes <= 1:
        for chunk in _chunks(missing, 32):
            yield _convert_chunk(chunk)
        return
    size = max(1, min(200, len(missing) // (processes * 4)))
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        yield from pool.imap_unordered(_convert_chunk, _chunks(missing, size))


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled, transient=False)


def convert_many(texts: Sequence[str], *, cache: str | Path | None | Literal[False] = None,
                 processes: int | None = None, progress: bool = True) -> list[G2PResult]:
    """One :class:`G2PResult` per transcript, in order; failures are reported, not raised.

    ``cache``: the SQLite file (None: :func:`default_cache_path`; False: no
    persistent cache). ``processes``: worker processes (None: all cores).
    Identical transcripts (after normalisation) are converted once.
    """
    normalized = {raw: normalize_transcript(raw) for raw in dict.fromkeys(texts)}
    keys = list(dict.fromkeys(normalized.values()))
    store = None if cache is False else G2PCache(default_cache_path() if cache is None else cache)
    pending: list[Row] = []  # written in batches: one transaction per chunk is slow on disk
    last_write = time.monotonic()
    try:
        known = store.get_many(keys) if store is not None else {}
        missing = [k for k in keys if k not in known]
        if missing:
            wanted = available_cpus() if processes is None else max(1, processes)
            n_proc = max(1, min(wanted, math.ceil(len(missing) / MIN_PER_PROCESS)))
            with _progress(progress) as bar:
                task = bar.add_task(f"G2P ({n_proc} process{'es' if n_proc > 1 else ''})",
                                    total=len(missing), rate="")
                for rows in _converted(missing, n_proc):
                    known.update((t, (p, e)) for t, p, e in rows)
                    pending.extend(rows)
                    if store is not None and (len(pending) >= WRITE_EVERY_ROWS or
                                              time.monotonic() - last_write > WRITE_EVERY_S):
                        store.put_many(pending)
                        pending.clear()
                        last_write = time.monotonic()
                    bar.advance(task, len(rows))
                    speed = bar.tasks[0].speed
                    bar.update(task, rate=f"{speed:,.0f}/s" if speed else "")
    finally:
        if store is not None:
            if pending:  # also on interruption: keep what was finished
                store.put_many(pending)
            store.close()

    by_raw: dict[str, G2PResult] = {}
    for raw, key in normalized.items():
        phones, reason = known[key]
        by_raw[raw] = G2PResult(phones, None) if reason is None else \
            G2PResult(None, describe_failure(raw, reason))
    return [by_raw[t] for t in texts]


def print_failures(results: Sequence[G2PResult], file=sys.stderr) -> int:
    """Print one line per failed transcript (with its 1-based position); return how many failed."""
    failed = 0
    for i, result in enumerate(results, 1):
        if result.error is not None:
            failed += 1
            print(f"line {i}: {result.error}", file=file)
    return failed
