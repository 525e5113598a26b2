"""Corpus index throughput: label files/s over a generated AI Hub-like corpus, extracted and zipped.

Generates N label files (English-key schema, prompts repeated across speakers
as in read children's speech) with a short WAV each (extracted: hard links to
one file; zipped: stored members), then times ``build_index`` on all cores:
first run with a cold G2P cache, first run with a warm one, and a re-run that
reuses the unit cache. ``python -m bench corpus [--labels 50000] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

FULL_CORPUS = 1_771_800 + 114_539 + 100_660  # label files of the real corpus (all splits)
SERVER_CORES = 16


def _wav(seconds: float = 0.5) -> bytes:
    import numpy as np
    import soundfile as sf

    t = np.arange(int(16000 * seconds)) / 16000
    buf = io.BytesIO()
    sf.write(buf, 0.2 * np.sin(2 * np.pi * 200 * t), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _label(i: int, spk: int, text: str, rng: random.Random) -> dict:
    return {
        "Basic": {"NumberOfSpeaker": f"{spk:05d}", "DataCategory": "ReadSpeech", "Language": "KOR",
                  "RecordingDate": "2021-08-17", "Version": "1.0"},
        "Speaker": {"SpeakerName": rng.choice(["KMS", "LJH", "PSY"]), "Gender": rng.choice(["Male", "Female"]),
                    "Age": str(rng.randint(3, 10)), "AgeGroup": "아동", "SchoolYear": "N/A",
                    "Region": "Seoul", "Dialect": "Standard"},
        "Environment": {"RecordingEnviron": "Home", "NoiseEnviron": "Normal", "RecordingDevices": "Phone"},
        "File": {"FileName": f"C{spk:05d}_{i:07d}.wav", "FileLength": "0.5", "FileFormat": "wav",
                 "NumberOfRepeat": "1"},
        "Wav": {"SamplingRate": "16000", "NumberOfChannel": "1", "NumberOfBit": "16",
                "SignalToNoiseRatio": rng.choice(["25dB", "+30", "N/A", 28])},
        "Miscellaneous_Info": {"SpeechStart": "0.1", "SpeechEnd": "0.4"},
        "Transcription": {"LabelText": text, "ErrorTagged": "N", "GrammaticalError": "N"},
        "Other": {"QualityStatus": "Good"},
    }


def generate(root: Path, n: int, *, zipped: bool, seed: int = 0, per_archive: int = 10_000) -> int:
    """N labels in 1.Training, TL_k/TS_k per ``per_archive`` labels; returns distinct transcripts."""
    from kidconsole.corpus.synth import load_sentences

    rng = random.Random(seed)
    prompts = load_sentences()[:60]
    wav = _wav()
    split = root / "1.Training"
    texts = set()
    master = split / "master.wav"
    if not zipped:
        split.mkdir(parents=True, exist_ok=True)
        master.write_bytes(wav)
    zl = za = None
    for i in range(n):
        k = i // per_archive + 1
        spk = i // 50  # 50 utterances a speaker
        text = rng.choice(prompts) if rng.random() < 0.7 else f"{rng.choice(prompts)} {rng.choice(prompts)}"
        texts.add(text)
        data = json.dumps(_label(i, spk, text, rng), ensure_ascii=False).encode()
        rel = f"C{spk:05d}/C{spk:05d}_{i:07d}"
        if zipped:
            if i % per_archive == 0:
                for z in (zl, za):
                    if z:
                        z.close()
                (split / "라벨링데이터").mkdir(parents=True, exist_ok=True)
                (split / "원천데이터").mkdir(parents=True, exist_ok=True)
                zl = zipfile.ZipFile(split / "라벨링데이터" / f"TL_{k:02d}.zip", "w")
                za = zipfile.ZipFile(split / "원천데이터" / f"TS_{k:02d}.zip", "w")
            zl.writestr(rel + ".json", data)
            za.writestr(rel + ".wav", wav)
        else:
            lp = split / "라벨링데이터" / f"TL_{k:02d}" / (rel + ".json")
            ap = split / "원천데이터" / f"TS_{k:02d}" / (rel + ".wav")
            lp.parent.mkdir(parents=True, exist_ok=True)
            ap.parent.mkdir(parents=True, exist_ok=True)
            lp.write_bytes(data)
            os.link(master, ap)
    for z in (zl, za):
        if z:
            z.close()
    if not zipped:
        master.unlink()
    return len(texts)


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from kidconsole.corpus.index import build_index

    parser = argparse.ArgumentParser(prog="bench corpus")
    parser.add_argument("--labels", type=int, default=50_000)
    parser.add_argument("--processes", type=int, default=None, help="default: all cores")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    cores = args.processes or os.cpu_count() or 1

    work = Path(args.keep or tempfile.mkdtemp(prefix="kc-bench-corpus-"))
    os.environ["KIDCONSOLE_G2P_CACHE"] = str(work / "g2p.sqlite")
    table = Table(title=f"corpus index: {args.labels:,} label files, {cores} processes, "
                  f"{os.cpu_count()} cores")
    for col in ("layout", "run", "seconds", "labels/s", "labels/s/core", "kept"):
        table.add_column(col, justify="right" if col not in ("layout", "run") else "left")
    measured: dict[str, dict[str, float]] = {}
    distinct = 0
    try:
        for layout in ("extracted", "zipped"):
            root = work / layout
            distinct = generate(root, args.labels, zipped=layout == "zipped")
            out = work / f"{layout}.jsonl"
            runs = [("first run, G2P cold", False), ("first run, G2P warm", False),
                    ("re-run (unit cache)", True)]
            if layout == "zipped":
                runs = runs[1:]  # the G2P cache is warm by now
            for name, resume in runs:
                s = build_index(root, out, processes=cores, resume=resume, progress=False)
                measured.setdefault(layout, {})[name] = s.seconds
                rate = s.labels / s.seconds
                table.add_row(layout, name, f"{s.seconds:.1f}", f"{rate:,.0f}", f"{rate / cores:,.0f}",
                              f"{s.kept:,}")
            shutil.rmtree(root, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    con = Console()
    con.print(table)
    con.print(f"{distinct:,} distinct transcripts.")
    # Amdahl: the re-run time bounds the serial part (discovery, merging, G2P lookups,
    # writing); the rest of a warm first run is the parallel parsing.
    for layout, t in measured.items():
        serial = t["re-run (unit cache)"]
        parallel = t["first run, G2P warm"] - serial
        per_core = args.labels / (parallel * cores)
        scale = FULL_CORPUS / args.labels
        minutes = (FULL_CORPUS / (per_core * SERVER_CORES) + serial * scale) / 60
        con.print(f"{layout}: parsing {per_core:,.0f} labels/s/core, serial part {serial:.1f} s per "
                  f"{args.labels:,}; {FULL_CORPUS:,} labels on {SERVER_CORES} cores: about {minutes:.1f} min "
                  f"(G2P warm; parsing scaled over cores, serial part scaled with the corpus)")
