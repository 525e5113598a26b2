"""Pseudo-labelling: unlabelled audio decoded by a trained model, kept where the model is confident.

``python -m trainers.pseudo RUN AUDIO -o pseudo.jsonl --min-confidence C`` (``kidconsole pseudo``
starts it). AUDIO is a folder of audio files (each file's folder, relative to AUDIO, is its speaker)
or a manifest. Each utterance is scored as selection scores it (trainers.confidence: the mean
per-frame max posterior); one at or above its threshold (``--min-confidence``, or its age bucket's
``--age-confidence``) becomes a manifest row with the decoded phones, ``pseudo: true`` and the
confidence. Its phones are the decode's phones of the inventory (``<unk>`` dropped); an utterance
with none is excluded; audio that cannot be used is skipped
and counted. Rows are streamed into a temporary file that replaces the output when all are done.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Iterator

import numpy as np

from kidconsole.audio import audio_info
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import Utterance, read_manifest
from kidconsole.rundir import atomic_writer
from kidconsole.subset.strata import Strata

CHUNK = 2048


def parse_thresholds(default: float, specs: list[str], strata: Strata) -> dict[str, float]:
    """The threshold of each age bucket: ``default`` unless a ``BUCKET=C`` names it."""
    labels = strata.labels("age")
    out = dict.fromkeys(labels, default)
    for spec in specs:
        bucket, sep, value = spec.partition("=")
        if not sep or bucket.strip() not in labels:
            raise KidconsoleError(f"--age-confidence {spec!r}: expected BUCKET=C with BUCKET one of "
                                  f"{', '.join(labels)}")
        try:
            out[bucket.strip()] = _share(float(value), f"--age-confidence {spec!r}")
        except ValueError:
            raise KidconsoleError(f"--age-confidence {spec!r}: {value!r} is not a number") from None
    return out


def _share(c: float, where: str) -> float:
    if not 0.0 <= c <= 1.0:
        raise KidconsoleError(f"{where}: a confidence is between 0 and 1, got {c:g}")
    return c


def clean_phones(phones: str) -> str:
    """A decode as a label: phones of the inventory only (no ``<unk>``), one ``|`` between words, none at
    either end."""
    from kidconsole.phonemes import SYMBOLS, WORD_SEP

    out: list[str] = []
    for t in phones.split():
        if t == WORD_SEP:
            if out and out[-1] != WORD_SEP:
                out.append(t)
        elif t in SYMBOLS:
            out.append(t)
    while out and out[-1] == WORD_SEP:
        out.pop()
    return " ".join(out)


def age_bucket(row: Utterance, strata: Strata) -> str:
    age = row.age_years
    code = strata.buckets(np.array([np.nan if age is None else age]), np.zeros(1), np.zeros(1))["age"][0]
    return strata.labels("age")[int(code)]


def folder_rows(root: Path, skipped: list[tuple[str, str]]) -> Iterator[Utterance]:
    """A row per audio file under ``root``: id its path relative to ``root`` without the suffix, speaker its
    folder (``root``'s own name for files directly in it); a file whose header cannot be read is skipped."""
    from trainers.transcribe import AUDIO_SUFFIXES

    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES):
        rel = f.relative_to(root)
        try:
            frames, rate, channels = audio_info(str(f))
        except KidconsoleError as e:
            skipped.append((str(f), str(e)))
            continue
        yield Utterance(id=rel.with_suffix("").as_posix(), audio=str(f), duration=round(frames / rate, 4) if rate else 0.0,
                        sample_rate=rate, speaker=rel.parent.as_posix() if rel.parent != Path(".") else root.name,
                        split="train", text="", phones="", channels=channels)


def parser() -> argparse.ArgumentParser:
    from kidconsole.job_arguments import add_pseudo_arguments

    ap = argparse.ArgumentParser(prog="python -m trainers.pseudo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pseudo_arguments(ap)
    return ap


def pseudo_label(scorer, rows: Iterator[Utterance], thresholds: dict[str, float], strata: Strata, out,
                 tally: dict[str, list[int]], skipped: list[tuple[str, str]], advance=lambda n: None) -> None:
    """Score ``rows`` in chunks; write the kept ones to ``out``; ``tally[bucket]`` = [kept, excluded]."""
    from trainers.transcribe import Item

    chunk: dict[str, Utterance] = {}

    def flush() -> None:
        for scores, bad in scorer.score([Item(r.id, r.audio) for r in chunk.values()]):
            skipped.extend((s.audio, s.reason) for s in bad)
            for s in scores:
                row, phones = chunk[s.id], clean_phones(s.phones)
                bucket = age_bucket(row, strata)
                confidence = round(s.confidence, 4)  # judged as written: a reader of the row sees the same
                keep = bool(phones) and confidence >= thresholds[bucket]
                tally.setdefault(bucket, [0, 0])[0 if keep else 1] += 1
                if keep:
                    out.write(dataclasses.replace(row, phones=phones, pseudo=True,
                                                  confidence=confidence).to_json() + "\n")
            advance(len(scores) + len(bad))
        chunk.clear()

    for row in rows:
        if row.id in chunk:
            skipped.append((row.audio, f"id {row.id} appears twice in the chunk being decoded"))
            continue
        chunk[row.id] = row
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from kidconsole.job_arguments import show_progress
    from trainers.confidence import Scorer
    from trainers.quiet import quiet_libraries
    from trainers.recogniser import load_recogniser

    args = parser().parse_args(argv)
    quiet_libraries()
    err = Console(stderr=True, soft_wrap=True)
    strata = Strata()
    thresholds = parse_thresholds(_share(args.min_confidence, "--min-confidence"), args.age_confidence, strata)
    source = Path(args.audio)
    skipped: list[tuple[str, str]] = []
    if source.is_dir():
        rows = list(folder_rows(source, skipped))
    elif source.is_file():
        rows = list(read_manifest(source))
    else:
        raise KidconsoleError(f"{source}: no such folder or manifest")
    if not rows and not skipped:
        raise KidconsoleError(f"{source}: no audio to pseudo-label")
    rec = load_recogniser(args.run, device=args.device)
    scorer = Scorer(rec, batch_seconds=args.batch_seconds, threads=args.threads)
    tally: dict[str, list[int]] = {}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(output) as out:
            if show_progress(args):
                with Progress(TextColumn("decoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                              console=err, transient=True) as bar:
                    task = bar.add_task("", total=len(rows))
                    pseudo_label(scorer, iter(rows), thresholds, strata, out, tally, skipped,
                                 lambda n: bar.advance(task, n))
            else:
                pseudo_label(scorer, iter(rows), thresholds, strata, out, tally, skipped)
    finally:
        scorer.close()
    t = Table(title=f"pseudo-labels of {source}")
    for col in ("age", "threshold", "kept", "excluded"):
        t.add_column(col, justify="left" if col == "age" else "right")
    for bucket in strata.labels("age"):
        if bucket in tally:
            t.add_row(bucket, f"{thresholds[bucket]:.3f}", str(tally[bucket][0]), str(tally[bucket][1]))
    err.print(t)
    kept = sum(k for k, _ in tally.values())
    err.print(f"{kept} of {sum(map(sum, tally.values()))} decoded utterances kept to {output}"
              + (f"; {len(skipped)} skipped" if skipped else ""), highlight=False)
    for where, why in skipped[:20]:
        err.print(f"skipped {where}: {why}", highlight=False, markup=False)
    return 0


if __name__ == "__main__":
    from trainers.confidence import run_command

    run_command(main, "pseudo")
