"""Transcription: audio files, folders or a manifest to phones, pronounced Hangul and confidences.

``kidconsole transcribe`` (kidconsole/cli/transcribe.py) parses its arguments
and calls ``main`` here; the server (trainers/serve.py) calls ``Transcriber``.
Inputs are batched by duration (``plan_sorted``, as the test evaluation) and
each result says how long it took: its share of its batch's wall time. A file
that cannot be used is skipped with the reason; the others are not affected.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from kidconsole.audio import audio_info
from kidconsole.errors import KidconsoleError
from trainers.batching import plan_sorted
from trainers.decode import GreedyDecoder
from trainers.segment import LongAudio, LongDecoder, join_phones
from trainers.waves import load_wave, make_batch

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64")
MANIFEST_SUFFIXES = (".jsonl",)
FORMATS = ("jsonl", "tsv", "text")
PROGRESS_SECONDS = 60.0  # a progress bar from this much audio on


@dataclass
class Item:
    """One utterance to transcribe."""
    id: str
    audio: str                    # a path or archive.zip::member
    ref: str | None = None        # reference phones (a manifest row's)


@dataclass
class Skipped:
    id: str
    audio: str
    reason: str

    def record(self) -> dict:
        return {"id": self.id, "audio": self.audio, "error": self.reason}


def collect_inputs(inputs: Sequence[str]) -> list[Item | Skipped]:
    """Audio files, folders (recursive, audio suffixes only) and manifests (``.jsonl``) as items, in order;
    an argument that is none of these is a Skipped entry in its place."""
    from kidconsole.manifest import read_manifest

    entries: list[Item | Skipped] = []
    seen: set[str] = set()

    def add(item: Item) -> None:
        if item.id not in seen:  # the same file named twice is transcribed once
            seen.add(item.id)
            entries.append(item)

    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if not files:
                entries.append(Skipped(arg, arg, f"no audio files ({', '.join(AUDIO_SUFFIXES[:4])} ...) in the folder"))
            for f in files:
                add(Item(str(f), str(f)))
        elif p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
            for row in read_manifest(p):
                add(Item(row.id, row.audio, " ".join(row.phones.split()) or None))
        elif p.is_file() or "::" in arg:
            add(Item(arg, arg))
        else:
            entries.append(Skipped(arg, arg, "no such file or folder"))
    return entries


class Transcriber:
    """Waves to results with one recogniser; batches by duration within ``batch_seconds``. Audio longer than
    ``chunk_seconds`` takes the long path (trainers.segment): voice-activity segments (or, ``vad=False``, the
    whole recording), each decoded in chunks with stride."""

    def __init__(self, recogniser, batch_seconds: float = 60.0, max_utterances: int = 64, decoder=None,
                 chunk_seconds: float = 20.0, vad: bool = True):
        self.rec = recogniser
        self.decoder = decoder or GreedyDecoder()  # trainers.decode.build_decoder
        self.batch_seconds, self.max_utterances = batch_seconds, max_utterances
        self.chunk_seconds, self.vad = chunk_seconds, vad
        self.inverse = recogniser.inverse_vocab
        fe = recogniser.forward.feature_extractor
        self.normalize, self.padding_value = bool(fe.do_normalize), float(fe.padding_value)
        self.masked = bool(fe.return_attention_mask)
        self.min_samples = recogniser.min_samples()

    def check(self, samples: np.ndarray, where: str) -> None:
        if len(samples) < self.min_samples:
            raise KidconsoleError(f"{where}: too short: {len(samples)} samples at {self.rec.sample_rate} Hz, the model "
                                  f"needs at least {self.min_samples}")

    def _forward(self, ids: list[str], waves: list[np.ndarray]):
        import torch

        batch = make_batch(ids, waves, normalize=self.normalize, padding_value=self.padding_value, masked=self.masked)
        with torch.no_grad(), self.rec.forward.evaluating():
            return self.rec.forward(batch)

    def logits(self, waves: list[np.ndarray]) -> list:
        """One forward pass: each wave's logits over its valid frames (frames x vocab)."""
        out = self._forward([str(k) for k in range(len(waves))], waves)
        return [row[:n] for row, n in zip(out.logits, out.frames.tolist())]

    def phones(self, logits) -> tuple[str, list[float]]:
        """One utterance's logits (frames x vocab) decoded with the transcriber's decoder: its phones and their
        confidences."""
        import torch

        (d,) = self.decoder(logits[None], torch.tensor([len(logits)]))
        return d.phones(self.inverse), d.confidences

    def samples_per_frame(self) -> int:
        return math.prod(self.rec.config.conv_stride)

    def long_decoder(self, forward=None) -> LongDecoder:
        """The long path, its forward passes through ``forward`` (waves to logits; default: ``logits``)."""
        return LongDecoder(forward or self.logits, self.phones, rate=self.rec.sample_rate,
                           samples_per_frame=self.samples_per_frame(), chunk_seconds=self.chunk_seconds,
                           batch_seconds=self.batch_seconds, vad=self.vad, min_samples=self.min_samples)

    def transcribe_long(self, source: str | bytes, where: str, forward=None) -> dict:
        """A recording of any length, never held whole: the fields of ``decode`` for the whole recording
        (its phones, segment by segment, a word boundary between them) and its ``segments``."""
        from kidconsole.g2p.hangul import phones_to_hangul

        t0 = time.perf_counter()
        with LongAudio(source, self.rec.sample_rate, where) as audio:
            segments = self.long_decoder(forward).run(audio)
            duration = audio.duration
        phones = join_phones([s.phones for s in segments])
        return {"phones": phones, "hangul": phones_to_hangul(phones),
                "confidence": [c for s in segments for c in s.confidence], "duration": round(duration, 3),
                "processing_seconds": round(time.perf_counter() - t0, 4),
                "segments": [s.record() for s in segments]}

    def decode(self, ids: list[str], waves: list[np.ndarray], with_logits: bool = False):
        """One forward pass over ``waves`` (already checked): each one's phones, Hangul and confidences,
        with its share of the pass's time (``with_logits``: and each one's logits over its frames)."""
        from kidconsole.g2p.hangul import phones_to_hangul

        t0 = time.perf_counter()
        out = self._forward(ids, waves)
        decoded = self.decoder(out.logits, out.frames)
        seconds = time.perf_counter() - t0
        total = sum(len(w) for w in waves)
        results = []
        for uid, w, d in zip(ids, waves, decoded):
            phones = d.phones(self.inverse)
            results.append({"id": uid, "phones": phones, "hangul": phones_to_hangul(phones),
                            "confidence": d.confidences, "duration": round(len(w) / self.rec.sample_rate, 3),
                            "processing_seconds": round(seconds * len(w) / total, 4)})
            if d.nbest:
                results[-1]["nbest"] = d.nbest_record(self.inverse)
        if with_logits:
            return results, [row[:n] for row, n in zip(out.logits, out.frames.tolist())]
        return results

    def headers(self, items: list[Item]) -> tuple[list[Item], list[float], list[Skipped]]:
        """The items whose audio header reads, their durations, and the others skipped."""
        usable, durations, skipped = [], [], []
        for it in items:
            try:
                frames, rate, _ = audio_info(it.audio)
            except KidconsoleError as e:
                skipped.append(Skipped(it.id, it.audio, str(e)))
                continue
            usable.append(it)
            durations.append(frames / rate if rate else 0.0)
        return usable, durations, skipped

    def run(self, usable: list[Item], durations: list[float], on_done: Callable[[float], None] = lambda s: None
            ) -> tuple[dict[str, dict], list[Skipped]]:
        """Results by id, and the items skipped (undecodable, truncated, empty or too short audio)."""
        results: dict[str, dict] = {}
        skipped: list[Skipped] = []
        for it, seconds in zip(usable, durations):
            if seconds > self.chunk_seconds:
                try:
                    results[it.id] = {"id": it.id, "audio": it.audio, **self.transcribe_long(it.audio, it.audio)}
                except KidconsoleError as e:
                    skipped.append(Skipped(it.id, it.audio, str(e)))
                on_done(seconds)
        short = [k for k, d in enumerate(durations) if d <= self.chunk_seconds]
        usable, durations = [usable[k] for k in short], [durations[k] for k in short]
        for plan in plan_sorted(durations, batch_seconds=self.batch_seconds, max_utts=self.max_utterances):
            ids, waves, kept = [], [], []
            for k in plan:
                it = usable[k]
                try:
                    w = load_wave(it.audio, self.rec.sample_rate)
                    self.check(w.samples, it.audio)
                except KidconsoleError as e:
                    skipped.append(Skipped(it.id, it.audio, str(e)))
                    continue
                ids.append(it.id)
                waves.append(w.samples)
                kept.append(it)
            if ids:
                for it, res in zip(kept, self.decode(ids, waves)):
                    results[it.id] = {"id": it.id, "audio": it.audio, **{k: v for k, v in res.items() if k != "id"}}
                    if it.ref is not None:
                        results[it.id]["ref"] = it.ref
            on_done(sum(durations[k] for k in plan))
        return results, skipped


# ---------- output ----------

def _tsv_field(v) -> str:
    return str(v).replace("\t", " ").replace("\n", " ")


def write_results(out, records: Iterable[dict], fmt: str) -> None:
    """jsonl: every field; tsv: a header and one line each (confidence as the mean); text: readable lines."""
    if fmt == "tsv":
        out.write("id\taudio\tphones\thangul\tmean_confidence\tduration\tprocessing_seconds\terror\n")
    for r in records:
        if fmt == "jsonl":
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
            continue
        conf = r.get("confidence") or []
        mean = f"{sum(conf) / len(conf):.3f}" if conf else ""
        if fmt == "tsv":
            cols = [r["id"], r["audio"], r.get("phones", ""), r.get("hangul", ""), mean, r.get("duration", ""),
                    r.get("processing_seconds", ""), r.get("error", "")]
            out.write("\t".join(_tsv_field(c) for c in cols) + "\n")
        elif "error" in r:
            out.write(f"{r['id']}: SKIPPED: {r['error']}\n")
        else:
            out.write(f"{r['id']}: {r['hangul']}  [{r['phones']}]  ({r['duration']:.2f} s, confidence {mean})\n")
            for seg in r.get("segments", ()):
                out.write(f"  {seg['start']:9.2f}-{seg['end']:.2f} s: {seg['hangul']}  [{seg['phones']}]\n")


def format_for(output: str | None, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(output).suffix.lower() if output else ""
    return {".tsv": "tsv", ".txt": "text"}.get(suffix, "jsonl")


def main(args) -> int:
    """The ``kidconsole transcribe`` command (arguments parsed by kidconsole/cli/transcribe.py)."""
    from rich.console import Console

    from kidconsole.decoding import options_from_args
    from trainers.decode import build_decoder
    from trainers.evaluate import rates
    from trainers.quiet import quiet_libraries
    from trainers.recogniser import load_recogniser

    quiet_libraries()
    err = Console(stderr=True, soft_wrap=True)
    fmt = format_for(args.output, args.format)
    entries = collect_inputs(args.inputs)
    items = [e for e in entries if isinstance(e, Item)]
    skipped = [e for e in entries if isinstance(e, Skipped)]
    rec = load_recogniser(args.model, device=args.device)
    tr = Transcriber(rec, batch_seconds=args.batch_seconds, decoder=build_decoder(options_from_args(args), rec.vocab),
                     chunk_seconds=args.chunk_seconds, vad=not args.no_vad)
    t0 = time.perf_counter()
    usable, durations, bad = tr.headers(items)
    skipped += bad
    if sum(durations) > PROGRESS_SECONDS and not args.no_progress and err.is_terminal:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("transcribing"), BarColumn(), TextColumn("{task.completed:.0f} of {task.total:.0f} s"),
                      TimeRemainingColumn(), console=err, transient=True) as bar:
            task = bar.add_task("", total=sum(durations))
            results, bad = tr.run(usable, durations, on_done=lambda s: bar.advance(task, s))
    else:
        results, bad = tr.run(usable, durations)
    wall = time.perf_counter() - t0
    skipped += bad
    by_id = {s.id: s for s in skipped}
    records = [e.record() if isinstance(e, Skipped) else results[e.id] if e.id in results else by_id[e.id].record()
               for e in entries]
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        write_results(out, records, fmt)
    finally:
        if args.output:
            out.close()
    total = sum(r["duration"] for r in results.values())
    err.print(f"{len(results)} transcribed ({total:.1f} s of audio in {wall:.1f} s, real-time factor "
              f"{wall / total if total else float('nan'):.3f}) with {rec.kind} {rec.path} on {rec.device}"
              + (f"; {len(skipped)} skipped" if skipped else ""), highlight=False)
    for s in skipped:
        err.print(f"skipped {s.audio}: {s.reason}", highlight=False, markup=False)
    scored = [r for r in results.values() if "ref" in r]
    if scored:
        r = rates([x["ref"] for x in scored], [x["phones"] for x in scored])
        cer = "-" if r["cer"] is None else f"{100 * r['cer']:.2f}%"
        err.print(f"PER {100 * r['per']:.2f}%  CER {cer}  WER {100 * r['wer']:.2f}% on {len(scored)} utterances "
                  f"with reference phones", highlight=False)
    return 1 if skipped else 0

