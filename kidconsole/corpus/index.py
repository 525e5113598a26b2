"""``kidconsole corpus index``: label files -> one manifest, in parallel and resumable.

1. :func:`~kidconsole.corpus.sources.discover` finds the label files (folders
   and zip archives) and cuts them into units of a few thousand.
2. Worker processes parse each unit: label JSON, pairing with its WAV, the
   WAV's header (sample rate, channels, true duration), the filters, and
   optionally a WADA-SNR estimate where the label gives none.
3. The parent dedupes the transcripts (children's corpora repeat prompts) and
   converts each distinct one once through the cached G2P.
4. The manifest, the side report of every rejected file with its reason
   (``<name>.rejects.jsonl``) and a summary (``<name>.summary.json``) are written.

Re-runs are fast: each unit's parsed rows are kept in ``<manifest>.cache/``
under a fingerprint of its label files (names, sizes, times), of the audio
containers of its split, and of the options; unchanged units are not parsed again.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import posixpath
import time
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kidconsole.audio import audio_info, read_audio
from kidconsole.corpus.filters import FilterConfig, Reject, check_row
from kidconsole.corpus.labels import LabelError, load_label, speaker_id
from kidconsole.corpus.snr import wada_snr
from kidconsole.corpus.sources import Container, LabelUnit, discover, find_audio, read_member
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import ZIP_SEP, Utterance, write_manifest
from kidconsole.rundir import atomic_write_text, atomic_writer

CACHE_FORMAT = "1"  # bump when the row-making code changes what it writes


@dataclass(frozen=True)
class IndexOptions:
    filters: FilterConfig = FilterConfig()
    probe_audio: bool = True      # read each WAV's header; off: trust the label's numbers
    estimate_snr: bool = False    # WADA-SNR from the audio where the label has no SNR
    speaker_scope: str = ""       # salts the speaker hash (see labels.speaker_id)

    def digest(self) -> str:
        return json.dumps([CACHE_FORMAT, asdict(self)], sort_keys=True)


@dataclass
class IndexSummary:
    manifest: Path
    rejects: Path
    labels: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    by_split: Counter = field(default_factory=Counter)
    hours: float = 0.0
    speakers: int = 0
    units: int = 0
    cached_units: int = 0
    distinct_texts: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(manifest=str(self.manifest), rejects=str(self.rejects),
                 rejected=dict(sorted(self.rejected.items())), by_split=dict(self.by_split))
        return d


def side_paths(manifest: str | Path) -> tuple[Path, Path, Path]:
    """(rejects report, summary, unit cache folder) beside a manifest path."""
    manifest = Path(manifest)
    stem = manifest.name[:-len(".jsonl")] if manifest.name.endswith(".jsonl") else manifest.name
    return (manifest.with_name(stem + ".rejects.jsonl"), manifest.with_name(stem + ".summary.json"),
            manifest.with_name(manifest.name + ".cache"))


# ---------------- one unit (runs in a worker process) ----------------

def parse_unit(unit: LabelUnit, split_audio: tuple[Container, ...], opts: IndexOptions) -> dict:
    """Rows (manifest dicts with phones still empty) and rejects of one unit."""
    rows, rejects = [], []
    for member in unit.members:
        where = unit.location(member)
        try:
            row = _make_row(unit, member, where, split_audio, opts)
        except _Rejected as r:
            rejects.append(Reject(r.reason, where, r.detail, r.audio).to_dict())
            continue
        rows.append(row)
    return {"rows": rows, "rejects": rejects}


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str, audio: str | None = None):
        self.reason, self.detail, self.audio = reason, detail, audio


def _make_row(unit, member, where, split_audio, opts) -> dict:
    try:
        raw = read_member(unit, member)
    except (OSError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise _Rejected("unreadable_label", f"{type(e).__name__}: {e}")
    try:
        lab = load_label(raw, where)
    except LabelError as e:
        raise _Rejected(e.reason, str(e))
    if not lab.speaker_number:
        raise _Rejected("no_speaker", "no Basic.NumberOfSpeaker")
    audio = find_audio(unit, member, lab.file_name, split_audio)
    if audio is None:
        raise _Rejected("missing_audio", f"no {lab.file_name or posixpath.splitext(posixpath.basename(member))[0] + '.wav'}")
    sr, ch, dur = lab.sample_rate, lab.channels, lab.duration
    if opts.probe_audio or sr is None or dur is None:
        try:
            frames, sr, ch = audio_info(audio)
        except KidconsoleError as e:
            raise _Rejected("bad_audio", str(e), audio)
        if lab.duration is not None and abs(lab.duration - frames / sr) > 0.1:
            lab.extra["label_duration"] = lab.duration  # the audio wins; the label's figure is kept
        dur = frames / sr
    failed = check_row(quality=lab.quality, sample_rate=sr, channels=ch, duration=dur, cfg=opts.filters)
    if failed:
        raise _Rejected(*failed, audio)
    if not lab.text:
        raise _Rejected("empty_text", "no transcript", audio)
    snr, estimated = lab.snr, False
    if snr is None and opts.estimate_snr:
        try:
            samples, _ = read_audio(audio)
        except KidconsoleError as e:
            raise _Rejected("bad_audio", str(e), audio)
        snr = wada_snr(samples)
        estimated = snr is not None
    name = posixpath.splitext(posixpath.basename(audio.split(ZIP_SEP)[-1]))[0]
    return {
        "id": f"{unit.split}/{name}", "audio": audio, "duration": round(dur, 4),
        "sample_rate": sr, "speaker": speaker_id(lab.speaker_number, opts.speaker_scope),
        "split": unit.split, "text": lab.text, "phones": "", "channels": ch or 1,
        "age": lab.age, "age_range": lab.age_range, "gender": lab.gender,
        "snr": round(snr, 2) if snr is not None else None, "snr_estimated": estimated,
        "quality": lab.quality, "label": where, "extra": lab.extra,
    }


def _work(args):
    index, unit, split_audio, opts = args
    return index, parse_unit(unit, split_audio, opts)


# ---------------- the whole index (parent process) ----------------

def build_index(root: str | Path, out: str | Path, *, options: IndexOptions = IndexOptions(),
                processes: int | None = None, chunk: int = 2000, resume: bool = True,
                g2p_cache=None, progress: bool = True) -> IndexSummary:
    """Index ROOT into the manifest OUT; never stops on one bad file."""
    from kidconsole.g2p import convert_many, normalize_transcript

    t0 = time.perf_counter()
    root = Path(root).resolve()
    if not root.exists():
        raise KidconsoleError(f"corpus root {root} does not exist")
    out = Path(out)
    rejects_path, summary_path, cache_dir = side_paths(out)
    found = discover(root, chunk=chunk)
    if not found.labels and not found.unreadable:
        raise KidconsoleError(f"no label files (*.json, in folders or zip archives) under {root}")
    summary = IndexSummary(out, rejects_path, labels=found.labels, units=len(found.units))
    results: list[dict | None] = [None] * len(found.units)
    opts_key = options.digest()

    def cache_file(unit: LabelUnit) -> Path:
        return cache_dir / (hashlib.blake2b((unit.fingerprint + opts_key).encode(),
                                            digest_size=12).hexdigest() + ".json")

    if resume:
        for i, unit in enumerate(found.units):
            try:
                results[i] = json.loads(cache_file(unit).read_text(encoding="utf-8"))
                summary.cached_units += 1
            except (OSError, ValueError):
                pass
    todo = [(i, u, found.audio.get(u.split, ()), options) for i, u in enumerate(found.units)
            if results[i] is None]
    n_proc = max(1, min(processes or os.cpu_count() or 1, len(todo)))
    cache_dir.mkdir(parents=True, exist_ok=True)

    # the pool starts before the progress bar's refresh thread: forking beside a thread is unsafe
    pool = None
    if n_proc > 1:
        pool = multiprocessing.get_context("fork" if os.name == "posix" else "spawn").Pool(n_proc)
    try:
        with _progress(progress) as bar:
            task = bar.add_task("labels", total=found.labels,
                                completed=sum(len(u.members) for u, r in zip(found.units, results) if r))
            done = pool.imap_unordered(_work, todo) if pool else map(_work, todo)
            for i, res in done:
                results[i] = res
                atomic_write_text(cache_file(found.units[i]), json.dumps(res, ensure_ascii=False))
                bar.advance(task, len(found.units[i].members))
        if pool:
            pool.close()
    finally:
        if pool:
            pool.terminate()  # after close(): waits for nothing; after an error: stops the workers
            pool.join()
    keep = {cache_file(u).name for u in found.units}
    for stale in cache_dir.glob("*.json"):
        if stale.name not in keep:
            stale.unlink(missing_ok=True)

    rejects = [{"reason": "unreadable_label", "label": path, "detail": why}
               for path, why in found.unreadable]
    rows, seen = [], set()
    for res in results:
        rejects.extend(res["rejects"])
        for row in res["rows"]:
            if row["id"] in seen:
                rejects.append({"reason": "duplicate_id", "label": row["label"], "audio": row["audio"],
                                "detail": f"id {row['id']} already indexed"})
                continue
            seen.add(row["id"])
            rows.append(row)

    # G2P once per distinct transcript, through the persistent cache
    speakable = [r for r in rows if normalize_transcript(r["text"])]
    for r in rows:
        if not normalize_transcript(r["text"]):
            rejects.append({"reason": "empty_text", "label": r["label"], "audio": r["audio"],
                            "detail": f"nothing to pronounce in {r['text']!r}"})
    texts = list(dict.fromkeys(r["text"] for r in speakable))
    summary.distinct_texts = len(texts)
    converted = dict(zip(texts, convert_many(texts, cache=g2p_cache, processes=processes,
                                             progress=progress))) if texts else {}
    kept: list[Utterance] = []
    for r in speakable:
        res = converted[r["text"]]
        if res.phones is None:
            rejects.append({"reason": "unmappable_text", "label": r["label"], "audio": r["audio"],
                            "detail": res.error})
            continue
        r["phones"] = res.phones
        kept.append(Utterance(**r))

    write_manifest(out, kept)
    _write_jsonl(rejects_path, rejects)
    summary.kept = len(kept)
    summary.rejected = Counter(r["reason"] for r in rejects)
    summary.by_split = Counter(u.split for u in kept)
    summary.hours = round(sum(u.duration for u in kept) / 3600, 4)
    summary.speakers = len({u.speaker for u in kept})
    summary.seconds = round(time.perf_counter() - t0, 3)
    summary_path.write_text(json.dumps(summary.to_dict(), indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    return summary


def _write_jsonl(path: Path, items: list[dict]) -> None:
    with atomic_writer(path) as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    # on stderr, as every progress bar: stdout carries the summary table
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled)
