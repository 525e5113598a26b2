"""``kidconsole corpus long``: one long recording made of a manifest's utterances, with what is where in it.

The utterances (in manifest order, again from the first when the recording
needs more) are laid one after another with a silence of ``gap`` seconds
(drawn uniformly) before each, under steady white noise of standard deviation
``noise`` over the whole recording, until it is ``minutes`` long. Written block
by block, so a recording of hours takes no more memory than one utterance.
Beside ``OUT.wav``, ``OUT.jsonl`` lists each placed utterance: ``id`` (its
place), ``source`` (the manifest row), ``start``/``end`` seconds and its
reference ``phones``: the truth the long-recording benchmark scores against.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from kidconsole.audio import read_audio
from kidconsole.errors import KidconsoleError


@dataclass
class Placed:
    id: str
    source: str
    start: float
    end: float
    phones: str


def truth_path(wav: str | Path) -> Path:
    return Path(wav).with_suffix(".jsonl")


def read_truth(wav: str | Path) -> list[Placed]:
    with open(truth_path(wav), encoding="utf-8") as f:
        return [Placed(**json.loads(line)) for line in f if line.strip()]


def long_recording(manifest: str | Path, out: str | Path, *, minutes: float, seed: int = 0,
                   gap: tuple[float, float] = (1.0, 3.0), noise: float = 0.003, limit: int | None = None,
                   grid: int = 320) -> list[Placed]:
    """Writes ``out`` (16-bit WAV at the manifest's sample rate) and its truth file; returns the placements.
    ``limit``: use only the manifest's first N utterances (cycled). Each utterance starts on a multiple of
    ``grid`` samples (20 ms at 16 kHz: the frame hop of the wav2vec2 encoders), as it started on one in its file:
    the synthetic voices decode worse half a frame off."""
    from kidconsole.manifest import read_manifest

    rows = list(read_manifest(manifest))[:limit]
    if not rows:
        raise KidconsoleError(f"{manifest}: no utterances")
    rate = rows[0].sample_rate
    if any(r.sample_rate != rate for r in rows):
        raise KidconsoleError(f"{manifest}: utterances at several sample rates: one recording needs one")
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * rate)
    placed: list[Placed] = []
    pos, k = 0, 0

    def write_noisy(f: sf.SoundFile, wave: np.ndarray) -> None:
        f.write(np.clip(wave + rng.normal(0, noise, len(wave)).astype(np.float32), -1, 1))

    with sf.SoundFile(out, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        while True:
            row = rows[k % len(rows)]
            silence = int(rng.uniform(*gap) * rate)
            silence += -(pos + silence) % grid
            wave, _ = read_audio(row.audio)
            if pos + silence + len(wave) > total:
                break
            write_noisy(f, np.zeros(silence, np.float32))
            write_noisy(f, wave.astype(np.float32))
            placed.append(Placed(f"long-{k:05d}", row.id, round((pos + silence) / rate, 4),
                                 round((pos + silence + len(wave)) / rate, 4), row.phones))
            pos += silence + len(wave)
            k += 1
        block = rate * 10
        while pos < total:  # silence to the full length
            n = min(block, total - pos)
            write_noisy(f, np.zeros(n, np.float32))
            pos += n
    with open(truth_path(out), "w", encoding="utf-8") as f:
        for p in placed:
            f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
    return placed
