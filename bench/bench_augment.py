"""Loader throughput with waveform augmentation, per core: ``python -m bench augment [--rounds N]``.

One process, one thread (a DataLoader worker's share of a machine), loading every batch of a set of
synthetic voices (the synthetic corpus's source-filter rendering, 2-8 s each, 16 kHz WAV) through
``trainers.data.BatchStream``: plain loading, each augmentation alone on every utterance, every
augmentation on every utterance, and each shipped config's chain (configs/*.yaml: a phase's or a
manifest's ``waveform``) at its probabilities. Arms interleave round by round so that each sees the same
machine load; the table gives the median over rounds of audio seconds loaded per wall second (a multiple
of real time) and of its ratio to plain loading in the same round. The noise folder is synthetic
recordings (MUSAN is not shipped); simulated rooms come from the cache (made once: their time is given
apart)."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from rich.console import Console
from rich.table import Table

SR = 16000
REPO = Path(__file__).resolve().parents[1]
TARGET = 100.0  # x real time per core: 14 workers feeding one H100 at 1,000 h of audio per GPU-hour
# each augmentation alone, on every utterance, at its default ranges (the noise folder filled in)
ALONE = {"concat": {"prob": 1.0}, "pitch": {"prob": 1.0}, "vtlp": {"prob": 1.0},
         "pitch + vtlp (one pass)": {"pitch": {"prob": 1.0}, "vtlp": {"prob": 1.0}},
         "reverb": {"prob": 1.0}, "noise": {"prob": 1.0}, "babble": {"prob": 1.0},
         "colored_noise": {"prob": 1.0}, "gain": {"prob": 1.0}}


def voices(root: Path, n: int, seed: int = 0) -> list:
    """``n`` utterances of the synthetic corpus's voices (adults and children), 2-8 s, with their phones."""
    from kidconsole.corpus.synth import _PIECES, _adult_voice, _child_voice, render
    from kidconsole.manifest import Utterance

    rng = np.random.default_rng(seed)
    phones = sorted(p for p in _PIECES if p != "|")
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        voice = _child_voice(rng, int(rng.integers(3, 11))) if k % 2 else _adult_voice(rng, "MF"[k % 4 // 2])
        target = rng.uniform(2.0, 8.0)
        seq: list[str] = []
        while len(seq) * 0.12 * voice.tempo < target:
            seq += [str(p) for p in rng.choice(phones, int(rng.integers(2, 5)))] + ["|"]
        x = render(seq[:-1], voice, rng)
        x = (0.5 * x / np.abs(x).max()).astype(np.float32)
        path = root / "wav" / f"v{k:03d}.wav"
        sf.write(path, x, SR, subtype="PCM_16")
        rows.append(Utterance(id=f"v{k:03d}", audio=str(path), duration=len(x) / SR, sample_rate=SR,
                              speaker=f"spk{k % 10}", split="train", text="", phones=" ".join(seq[:-1])))
    return rows


def noise_folder(root: Path) -> Path:
    """Eight 10 s "recordings": coloured noise, a hum with harmonics, and mixtures, at 16 and 44.1 kHz."""
    from trainers.wave_augment import colored_noise

    folder = root / "noise"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(8):
        rate = (SR, 44100)[k % 2]
        n = 10 * rate
        t = np.arange(n) / rate
        x = colored_noise(n, ("white", "pink", "brown", "blue")[k % 4], rng)
        x += (k % 3) * sum(np.sin(2 * np.pi * 50 * (h + 1) * t) / (h + 1) for h in range(6)).astype(np.float32)
        sf.write(folder / f"noise{k}.wav", (0.3 * x / np.abs(x).max()).astype(np.float32), rate)
    return folder


def shipped_chains() -> dict[str, dict]:
    """Each shipped config's waveform chains (a phase's, a manifest's), by where they are."""
    from kidconsole.config import resolve_config

    out = {}
    for path in sorted((REPO / "configs").glob("*.yaml")):
        cfg = resolve_config(yaml.safe_load(path.read_text(encoding="utf-8")), str(path), path.parent,
                             check_paths=False)
        for i, phase in enumerate(cfg.phases):
            for m, aug in enumerate(cfg.manifest_augments(phase)):
                where = f"{path.name} phase {i + 1}" + (f" manifest {m + 1}" if phase.manifests else "")
                if aug.waveform.active() and aug.waveform.model_dump() not in [v["waveform"] for v in out.values()]:
                    out[where] = {"waveform": aug.waveform.model_dump(), "speed_prob": aug.speed_prob}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench augment")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the utterances per arm (default 3)")
    ap.add_argument("--utterances", type=int, default=40, help="synthetic utterances (default 40, about 3 min)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from kidconsole.config import Augment
    from trainers.batching import plan_epoch
    from trainers.data import BatchStream
    from trainers.tokenizer import build_feature_extractor
    from trainers.wave_augment import Chain, prepare

    console = Console(width=140)
    with tempfile.TemporaryDirectory(prefix="bench-augment-") as tmp:
        root = Path(tmp)
        rows = voices(root, args.utterances)
        folder = str(noise_folder(root))
        seconds = sum(r.duration for r in rows)
        plan = plan_epoch([r.duration for r in rows], seed=0, epoch=0, batch_seconds=40.0, max_utts=16, bucket=256)

        def augment(waveform: dict, speed_prob: float = 0.0) -> Augment:
            waveform = {k: dict(v) for k, v in waveform.items()}
            if "noise" in waveform and waveform["noise"].get("prob", 0) > 0 and not waveform["noise"].get("folder"):
                waveform["noise"]["folder"] = folder
            return Augment(apply_prob=0.0, speed_prob=speed_prob, waveform=waveform)

        arms: dict[str, Augment] = {"plain loading": augment({})}
        for name, spec in ALONE.items():
            arms[name] = augment(spec if "+" in name else {name: spec})
        arms["every augmentation, every utterance"] = augment({k: {"prob": 1.0} for k in
                                                                ("concat", "pitch", "vtlp", "reverb", "noise",
                                                                 "babble", "colored_noise", "gain")})
        for where, spec in shipped_chains().items():
            arms[f"shipped: {where}"] = augment(spec["waveform"], spec["speed_prob"])

        t0 = time.perf_counter()
        chains = {name: Chain(a, SR, prepare(a.waveform, SR)) for name, a in arms.items()}
        prepare_s = time.perf_counter() - t0
        speed: dict[str, list[float]] = {name: [] for name in arms}  # per CPU second of the process: per core
        wall: dict[str, list[float]] = {name: [] for name in arms}
        ratio: dict[str, list[float]] = {name: [] for name in arms}
        counts: dict[str, dict] = {}
        fx = build_feature_extractor()
        for r in range(args.rounds):
            for name, chain in chains.items():
                stream = BatchStream(rows, plan, feature_extractor=fx, kernels=(10, 4, 4), strides=(5, 4, 4),
                                     sample_rate=SR, max_seconds=20.0, chains=[chain], batch_seconds=40.0,
                                     seed=0, phase=0, epoch=r)
                t, c = time.perf_counter(), time.process_time()
                got = [stream.load(k) for k in range(len(plan))]
                cpu, dt = time.process_time() - c, time.perf_counter() - t
                audio = sum(b.audio_seconds for b in got)
                speed[name].append(audio / cpu)
                wall[name].append(audio / dt)
                ratio[name].append(speed[name][-1] / speed["plain loading"][-1])
                counts[name] = {k: sum(b.augmented.get(k, 0) for b in got)
                                for k in {k for b in got for k in b.augmented}}
                counts[name]["utterances"] = sum(len(b.ids) for b in got)

        table = Table(title=f"Loader throughput per core with waveform augmentation ({len(rows)} synthetic voices, "
                            f"{seconds / 60:.1f} min of audio, {args.rounds} rounds, 1 thread)")
        for col in ("arm", "x real time per core", "vs plain", f"≥ {TARGET:g}x", "x real time (wall)",
                    "applied (training utterances)"):
            table.add_column(col, justify="left" if col in ("arm", "applied (training utterances)") else "right")
        for name in arms:
            med = statistics.median(speed[name])
            applied = ", ".join(f"{k} {v}" for k, v in sorted(counts[name].items()) if k != "utterances")
            table.add_row(name, f"{med:,.0f}", f"{statistics.median(ratio[name]):.3f}",
                          "yes" if med >= TARGET else "NO", f"{statistics.median(wall[name]):,.0f}",
                          f"{applied or '-'} of {counts[name]['utterances']}")
        table.caption = (f"x real time per core: audio seconds loaded per CPU second of the one-thread process "
                         f"(median of rounds; unmoved by other jobs on the machine); wall: per elapsed second, "
                         f"under the machine's load (1-min load average {os.getloadavg()[0]:.1f} at the end). "
                         f"vs plain: the same round's plain loading. Noise files listed and rooms read or made "
                         f"once: {prepare_s:.1f} s.")
        console.print(table)
