"""Confidence-based selection: the hours of a pool the model finds hardest, stratified and speaker-capped.

``python -m trainers.select RUN --manifest M --hours H -o picked.jsonl`` (``kidconsole select`` starts
it). Three steps, each its own function:

1. ``score_pool`` streams M in chunks, scores each utterance (trainers.confidence) and appends one line
   per utterance to ``picked.scores.jsonl`` as it goes: killed and started again, it skips what that file
   already holds (a torn last line is dropped), so a pool of millions resumes where it stopped. An
   utterance whose audio cannot be used gets a line with its ``error`` and counts as skipped.
2. ``pick`` takes the hardest utterances (lowest confidence; with ``--by phone-confidence`` lowest
   confidence of the decoded phones; with ``--by loss`` highest loss) per
   age x SNR stratum, each stratum's quota its share of the pool's hours (a non-empty stratum gets at
   least one utterance: none is starved), no speaker over ``--speaker-hours``; hours the caps left
   unspent go to the hardest remaining utterances anywhere, under the same speaker cap.
3. The picked rows are copied from M as they are (a second streaming pass), with ``picked.report.json``:
   pool vs picks per stratum, speakers, and on labelled utterances how confidence and loss correlate
   with the utterance's PER.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from kidconsole.errors import KidconsoleError
from kidconsole.manifest import numbered_rows
from kidconsole.rundir import atomic_write_text, atomic_writer
from kidconsole.subset.strata import Strata

CHUNK = 4096  # rows read and scored at a time


@dataclass
class Scored:
    """What selection needs of one scored utterance (a line of the scores file)."""
    id: str
    duration: float
    speaker: str
    age: float | None
    snr: float | None
    confidence: float
    loss: float | None = None
    per: float | None = None
    phone_confidence: float | None = None  # None in a scores file written before it was scored

    def hardness(self, by: str) -> float:
        if by == "loss":
            return -math.inf if self.loss is None else self.loss
        if by == "phone-confidence":
            return -math.inf if self.phone_confidence is None else -self.phone_confidence
        return -self.confidence


def sibling(output: Path, suffix: str) -> Path:
    """``picked.jsonl`` -> ``picked.scores.jsonl`` (``suffix`` ".scores.jsonl") beside it."""
    return output.with_name(output.name.removesuffix(".jsonl") + suffix)


# ---------- 1. scoring, streamed and resumable ----------

def read_scores(path: Path, meta: dict, header: str = "scores_of", kept: Callable[[dict], dict] = lambda d: d
                ) -> tuple[list[dict], int]:
    """The lines a scores file already holds (after its header), and its length in bytes up to the last whole
    line. A header for another model or manifest is an error: those scores are not this selection's
    (``header``: the header's key, ``alignments_of`` for trainers.align; ``kept``: what of a line is kept in
    memory)."""
    if not path.exists():
        return [], 0
    records, good = [], 0
    with path.open("rb") as fh:
        for k, raw in enumerate(fh):
            if not raw.endswith(b"\n"):
                break  # torn by a kill: scored again
            try:
                d = json.loads(raw)
            except ValueError:
                raise KidconsoleError(f"{path}:{k + 1}: not JSON; delete the file to score the pool again") from None
            if k == 0:
                if d.get(header) != meta:
                    raise KidconsoleError(f"{path}: {header.replace('_', ' ')} {d.get(header)}, not of {meta}; "
                                          f"delete it or choose another -o")
            else:
                records.append(kept(d))
            good += len(raw)
    return records, good


def count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def score_pool(scorer, manifest: Path, scores_path: Path, meta: dict,
               advance: Callable[[int], None] = lambda n: None, header: str = "scores_of",
               kept: Callable[[dict], dict] = lambda d: d) -> list[dict]:
    """Every utterance of ``manifest`` scored (see the module's docstring); returns all score lines.
    ``scorer.score(items)`` yields, per batch, objects with ``id`` and ``record()`` and the items skipped
    (trainers.confidence.Scorer; trainers.align.Aligner writes alignments the same way, under ``header``,
    keeping in memory only what ``kept`` gives of each line)."""
    from trainers.transcribe import Item

    records, keep = read_scores(scores_path, meta, header, kept)
    done = {r["id"] for r in records}
    advance(len(done))
    with scores_path.open("ab") as out:
        out.truncate(keep)
        if keep == 0:
            out.write((json.dumps({header: meta}) + "\n").encode())

        def write(recs: list[dict]) -> None:
            out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs).encode())
            out.flush()
            os.fsync(out.fileno())
            records.extend(kept(r) for r in recs)

        chunk: dict[str, tuple[Item, dict]] = {}

        def flush_chunk() -> None:
            items = [it for it, _ in chunk.values()]
            for scores, skipped in scorer.score(items):
                recs = [{**chunk[s.id][1], **s.record()} for s in scores]
                recs += [{**chunk[s.id][1], "error": s.reason} for s in skipped]
                write(recs)
                advance(len(recs))
            chunk.clear()

        for lineno, row in numbered_rows(manifest):
            uid = row.id
            if not isinstance(uid, str) or not isinstance(row.audio, str) or uid in done:
                if uid not in done:  # a row without a usable id or audio: counted, never scored
                    write([{"id": f"{manifest}:{lineno}", "error": "id and audio must be strings"}])
                advance(1)
                continue
            done.add(uid)
            phones = row.phones if isinstance(row.phones, str) else ""
            info = {"id": uid, "duration": row.duration, "speaker": str(row.speaker), "age": row.age_years,
                    "snr": row.snr}
            chunk[uid] = (Item(uid, row.audio, " ".join(phones.split()) or None), info)
            if len(chunk) >= CHUNK:
                flush_chunk()
        if chunk:
            flush_chunk()
    return records


# ---------- 2. picking ----------

def _strata(items: list[Scored], strata: Strata) -> tuple[np.ndarray, list[str]]:
    """Each item's age x SNR stratum code, and the strata's labels."""
    nan = float("nan")
    b = strata.buckets(np.array([nan if s.age is None else s.age for s in items]),
                       np.array([nan if s.snr is None else s.snr for s in items]),
                       np.zeros(len(items)))
    ages, snrs = strata.labels("age"), strata.labels("snr")
    codes = b["age"].astype(np.int64) * len(snrs) + b["snr"]
    return codes, [f"{a} / {s}" for a in ages for s in snrs]


def default_speaker_hours(items: list[Scored], hours: float) -> float:
    """Twice an equal share of the picked hours per speaker of the pool."""
    return 2 * hours / max(1, len({s.speaker for s in items}))


def pick(items: list[Scored], hours: float, *, speaker_hours: float | None = None, by: str = "confidence",
         strata: Strata | None = None) -> list[Scored]:
    """The hardest ``hours`` of ``items`` by stratum and speaker cap (see the module's docstring)."""
    if not items:
        return []
    strata = strata or Strata()
    cap = (default_speaker_hours(items, hours) if speaker_hours is None else speaker_hours) * 3600
    budget = hours * 3600
    codes, _ = _strata(items, strata)
    pool = np.array([s.duration for s in items], dtype=float)
    order = sorted(range(len(items)), key=lambda i: (-items[i].hardness(by), items[i].id))
    quota = {int(c): budget * pool[codes == c].sum() / pool.sum() for c in np.unique(codes)}
    used_stratum = dict.fromkeys(quota, 0.0)
    used_speaker: dict[str, float] = {}
    taken: set[int] = set()
    total = 0.0

    def take(i: int) -> None:
        nonlocal total
        s = items[i]
        taken.add(i)
        used_stratum[int(codes[i])] += s.duration
        used_speaker[s.speaker] = used_speaker.get(s.speaker, 0.0) + s.duration
        total += s.duration

    def speaker_fits(s: Scored) -> bool:
        return used_speaker.get(s.speaker, 0.0) + s.duration <= cap

    for i in order:  # each stratum to its quota, hardest first (rounding to the nearest utterance)
        s, c = items[i], int(codes[i])
        first = used_stratum[c] == 0.0
        if speaker_fits(s) and (first or used_stratum[c] + s.duration / 2 <= quota[c]) \
                and total + s.duration / 2 <= budget:
            take(i)
    for i in order:  # what the caps left: the hardest remaining anywhere
        s = items[i]
        if i not in taken and speaker_fits(s) and total + s.duration / 2 <= budget:
            take(i)
    return [items[i] for i in order if i in taken]


# ---------- 3. the report ----------

def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties given their mean rank (for Spearman's correlation)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = np.arange(len(x), dtype=float)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def correlations(items: Iterable[Scored]) -> dict:
    """How confidence, phone confidence and loss follow PER, on the utterances with reference phones."""
    lab = [s for s in items if s.per is not None]
    out: dict = {"labelled_utterances": len(lab)}
    conf, per = np.array([s.confidence for s in lab]), np.array([s.per for s in lab])
    out["pearson_confidence_per"] = _pearson(conf, per)
    for name in ("confidence", "phone_confidence", "loss"):
        scored = [s for s in lab if getattr(s, name) is not None]
        x, y = np.array([getattr(s, name) for s in scored]), np.array([s.per for s in scored])
        out[f"spearman_{name}_per"] = _pearson(_ranks(x), _ranks(y)) if scored else None
    return out


def _summary(items: list[Scored]) -> dict:
    conf = [s.confidence for s in items]
    pers = [s.per for s in items if s.per is not None]
    return {"utterances": len(items), "hours": round(sum(s.duration for s in items) / 3600, 4),
            "speakers": len({s.speaker for s in items}),
            "mean_confidence": round(float(np.mean(conf)), 4) if conf else None,
            "mean_per": round(float(np.mean(pers)), 4) if pers else None}


def build_report(pool: list[Scored], picked: list[Scored], *, hours: float, by: str, speaker_hours: float,
                 skipped: list[dict], strata: Strata | None = None) -> dict:
    strata = strata or Strata()
    codes, labels = _strata(pool, strata)
    picked_ids = {s.id for s in picked}
    rows = []
    for c in np.unique(codes):
        members = [pool[i] for i in np.flatnonzero(codes == c)]
        chosen = [s for s in members if s.id in picked_ids]
        p, q = _summary(members), _summary(chosen)
        rows.append({"stratum": labels[int(c)], "pool_utterances": p["utterances"], "pool_hours": p["hours"],
                     "pool_share": round(p["hours"] * 3600 / max(1e-9, sum(s.duration for s in pool)), 4),
                     "picked_utterances": q["utterances"], "picked_hours": q["hours"],
                     "picked_share": round(q["hours"] * 3600 / max(1e-9, sum(s.duration for s in picked)), 4),
                     "pool_mean_confidence": p["mean_confidence"], "picked_mean_confidence": q["mean_confidence"]})
    per_speaker: dict[str, float] = {}
    for s in picked:
        per_speaker[s.speaker] = per_speaker.get(s.speaker, 0.0) + s.duration
    return {"hours_asked": hours, "by": by, "speaker_cap_hours": round(speaker_hours, 4),
            "max_speaker_hours": round(max(per_speaker.values(), default=0.0) / 3600, 4),
            "pool": _summary(pool), "picked": _summary(picked), "strata": rows,
            "correlation": correlations(pool), "skipped": len(skipped),
            "skipped_examples": [{"id": d["id"], "error": d["error"]} for d in skipped[:20]]}


def print_report(report: dict, console) -> None:
    from rich.table import Table

    t = Table(title=f"picked {report['picked']['hours']:.3f} h of {report['pool']['hours']:.3f} h "
              f"(hardest by {report['by']})")
    for col in ("stratum", "pool h", "pool share", "picked h", "picked share", "pool conf", "picked conf"):
        t.add_column(col, justify="left" if col == "stratum" else "right")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for r in report["strata"]:
        t.add_row(r["stratum"], fmt(r["pool_hours"]), fmt(r["pool_share"]), fmt(r["picked_hours"]),
                  fmt(r["picked_share"]), fmt(r["pool_mean_confidence"]), fmt(r["picked_mean_confidence"]))
    console.print(t)
    c = report["correlation"]
    console.print(f"speakers {report['picked']['speakers']} of {report['pool']['speakers']}, the most from one "
                  f"{report['max_speaker_hours']:.3f} h (cap {report['speaker_cap_hours']:.3f} h); "
                  f"confidence vs PER on {c['labelled_utterances']} labelled: Spearman "
                  f"{fmt(c['spearman_confidence_per'])}, phone confidence {fmt(c['spearman_phone_confidence_per'])}, "
                  f"loss {fmt(c['spearman_loss_per'])}; {report['skipped']} skipped", highlight=False)


# ---------- the command ----------

def parser() -> argparse.ArgumentParser:
    from kidconsole.job_arguments import add_select_arguments

    ap = argparse.ArgumentParser(prog="python -m trainers.select", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_select_arguments(ap)
    return ap


def to_scored(d: dict) -> Scored:
    return Scored(d["id"], float(d["duration"]), d["speaker"], d.get("age"), d.get("snr"), d["confidence"],
                  d.get("loss"), d.get("per"), d.get("phone_confidence"))


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from kidconsole.job_arguments import show_progress
    from trainers.confidence import Scorer
    from trainers.quiet import quiet_libraries
    from trainers.recogniser import load_recogniser

    args = parser().parse_args(argv)
    quiet_libraries()
    err = Console(stderr=True, soft_wrap=True)
    manifest = Path(args.manifest).resolve()
    if not manifest.is_file():
        raise KidconsoleError(f"{manifest}: no such manifest")
    output = Path(args.output or "picked.jsonl").resolve()
    if args.hours <= 0:
        raise KidconsoleError(f"--hours {args.hours:g}: must be a positive number of hours")
    output.parent.mkdir(parents=True, exist_ok=True)
    rec = load_recogniser(args.run, device=args.device)
    meta = {"model": str(rec.path), "manifest": str(manifest)}
    scorer = Scorer(rec, batch_seconds=args.batch_seconds, threads=args.threads)
    scores_path = sibling(output, ".scores.jsonl")
    try:
        if show_progress(args):
            with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task("", total=count_lines(manifest))
                records = score_pool(scorer, manifest, scores_path, meta, lambda n: bar.advance(task, n))
        else:
            records = score_pool(scorer, manifest, scores_path, meta)
    finally:
        scorer.close()
    if args.by == "phone-confidence" and any("error" not in d and "phone_confidence" not in d for d in records):
        raise KidconsoleError(f"{scores_path}: scored before phone confidence was written, so --by "
                              f"phone-confidence cannot rank it; delete it to score the pool again, or choose "
                              f"another -o")
    skipped = [d for d in records if "error" in d]
    pool = [to_scored(d) for d in records if "error" not in d]
    cap = args.speaker_hours if args.speaker_hours is not None else default_speaker_hours(pool, args.hours)
    picked = pick(pool, args.hours, speaker_hours=cap, by=args.by)
    ids = {s.id for s in picked}
    n = 0
    with atomic_writer(output, "wb") as out, manifest.open("rb") as src:
        for raw in src:  # rows copied as written: nothing of a row is lost or rewritten
            uid = json.loads(raw).get("id") if raw.strip() else None
            if uid in ids:
                out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                ids.discard(uid)  # a repeated id is picked once
                n += 1
    report = build_report(pool, picked, hours=args.hours, by=args.by, speaker_hours=cap, skipped=skipped)
    report.update(manifest=str(manifest), model=str(rec.path), output=str(output), scores=str(scores_path))
    report_path = sibling(output, ".report.json")
    atomic_write_text(report_path, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print_report(report, err)
    err.print(f"{n} utterances to {output}; report {report_path}; scores {scores_path}", highlight=False)
    if pool and report["picked"]["hours"] < 0.98 * args.hours:
        err.print(f"the pool and speaker cap gave {report['picked']['hours']:.3f} h of the {args.hours:g} h asked",
                  highlight=False)
    return 0


if __name__ == "__main__":
    from trainers.confidence import run_command

    run_command(main, "select")
