"""Room impulse responses for reverberation: simulated shoebox rooms (pyroomacoustics, made once and cached)
or a folder of recorded ones. Each comes trimmed where its tail has decayed by 60 dB (at most 1 s after the
direct path) and scaled so that its direct path is its first sample, of 1: a convolution cut to the dry
sound's length keeps its timing."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kidconsole import rundir
from kidconsole.audio import read_audio
from kidconsole.errors import KidconsoleError

MAX_IR_SECONDS = 1.0   # after the direct path: the tail beyond is below audibility in speech at these RT60s
MAX_FILES = 1000       # impulse responses read from a folder
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
# shoebox sizes (m): from a small bedroom to a classroom
ROOM_MIN, ROOM_MAX = np.array([3.0, 3.0, 2.5]), np.array([10.0, 8.0, 4.0])


@dataclass
class Responses:
    irs: list[np.ndarray]   # float32, each with its direct path at 0 and of peak 1 there
    source: str             # where they came from, for messages

    def __len__(self) -> int:
        return len(self.irs)


def cache_dir() -> Path:
    """``$KIDCONSOLE_ROOMS_CACHE``, else ``~/.cache/kidconsole/rooms``."""
    env = os.environ.get("KIDCONSOLE_ROOMS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "kidconsole" / "rooms"


def prepared(h: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """An impulse response from its direct path (its peak) to where its energy has decayed by 60 dB, at most
    MAX_IR_SECONDS, scaled to a direct path of 1; None when it is silent."""
    h = np.asarray(h, dtype=np.float64)
    if not h.size or not np.isfinite(h).all():
        return None
    start = int(np.argmax(np.abs(h)))
    if h[start] == 0:
        return None
    h = h[start:start + int(MAX_IR_SECONDS * sample_rate)] / h[start]
    tail = np.cumsum(h[::-1] ** 2)[::-1]  # the energy from each sample on
    end = int(np.argmax(tail < tail[0] * 1e-6)) or len(h)
    return h[:end].astype(np.float32)


def simulate(rooms: int, rt60: tuple[float, float], sample_rate: int, seed: int = 0) -> list[np.ndarray]:
    """``rooms`` shoebox rooms (image source method) of an RT60 drawn from ``rt60``, the source and the
    microphone at least 0.5 m from the walls and 1 m apart."""
    import pyroomacoustics as pra

    rng = np.random.default_rng([seed, rooms, int(rt60[0] * 1000), int(rt60[1] * 1000), sample_rate])
    out = []
    while len(out) < rooms:
        dims = rng.uniform(ROOM_MIN, ROOM_MAX)
        target = rng.uniform(*rt60)
        try:
            absorption, order = pra.inverse_sabine(target, dims)
        except ValueError:  # a room too large for so short a reverberation: draw another
            continue
        room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=order)
        src, mic = (rng.uniform(0.5, dims - 0.5) for _ in range(2))
        if np.linalg.norm(src - mic) < 1.0:
            continue
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = prepared(room.rir[0][0], sample_rate)
        if h is not None:
            out.append(h)
    return out


def simulated_rooms(rooms: int, rt60: tuple[float, float], sample_rate: int) -> Responses:
    """The simulated rooms, from the cache when made before with the same settings."""
    key = json.dumps({"rooms": rooms, "rt60": list(rt60), "sample_rate": sample_rate, "version": 1})
    path = cache_dir() / f"rooms-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    try:
        with np.load(path) as data:
            irs = [data[f"ir{i}"] for i in range(rooms)]
        return Responses(irs, str(path))
    except (OSError, KeyError, ValueError, EOFError):
        pass  # not made yet, or damaged: made again
    irs = simulate(rooms, rt60, sample_rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rundir.atomic_writer(path, "wb") as fh:  # several processes may make them at once: the last whole file wins
        np.savez(fh, **{f"ir{i}": h for i, h in enumerate(irs)})
    return Responses(irs, str(path))


def audio_files(folder: str, what: str, key: str, limit: int | None = None) -> list[str]:
    """The audio files under ``folder`` (recursively, sorted: every process lists the same), at most
    ``limit``; an error naming the key and the folder when there is none."""
    root = Path(folder)
    if not root.is_dir():
        raise KidconsoleError(f"{key}: {folder} is not a folder of {what}")
    files = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
            files.append(str(p))
            if limit is not None and len(files) >= limit:
                break
    if not files:
        raise KidconsoleError(f"{key}: no {what} ({', '.join(AUDIO_SUFFIXES)}) under {folder}")
    return files


def folder_responses(folder: str, sample_rate: int, key: str) -> Responses:
    """The impulse responses in ``folder`` (the first MAX_FILES), resampled to ``sample_rate``."""
    import torch
    import torchaudio.functional as AF

    irs = []
    for path in audio_files(folder, "impulse responses", key, MAX_FILES):
        h, sr = read_audio(path)
        if sr != sample_rate:
            h = AF.resample(torch.from_numpy(np.ascontiguousarray(h)), sr, sample_rate).numpy()
        h = prepared(h, sample_rate)
        if h is not None:
            irs.append(h)
    if not irs:
        raise KidconsoleError(f"{key}: every impulse response under {folder} is silent")
    return Responses(irs, folder)
