"""Audio of any kind to the model's input: decoded, mixed down, resampled, normalised and padded.

For transcription and serving, where audio comes as files or request bodies of any sample rate and
channel count (the trainer's batches come from manifest rows, in ``trainers.data``). Each failure is a
``KidconsoleError`` that says what is wrong with the audio.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from kidconsole.audio import libsndfile_reason, open_audio
from kidconsole.bounded import open_regular
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import split_location
from trainers.data import Batch, normalize_


class TooLong(KidconsoleError):
    """Audio longer than the caller's limit."""


@dataclass
class Wave:
    samples: np.ndarray      # mono float32 at the model's sample rate
    duration: float          # seconds
    source_rate: int
    channels: int


def _open(source: str | bytes, where: str) -> sf.SoundFile:
    if isinstance(source, str):
        return open_audio(source)
    if not source:
        raise KidconsoleError(f"{where}: empty body: no audio")
    try:
        return sf.SoundFile(io.BytesIO(source))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise KidconsoleError(f"{where}: not audio that can be decoded (WAV, FLAC, OGG ...): "
                              f"{libsndfile_reason(e)}") from e


def wav_declared(head: bytes) -> tuple[int, int] | None:
    """(frames, sample rate) a RIFF/WAVE header declares (its data chunk's size over the block size), None when
    it is not a WAV, declares no size (a stream's 0 or 0xFFFFFFFF) or the head stops before the data chunk.
    libsndfile quietly shortens a truncated WAV to the bytes that are there; this is what the file claimed."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block, rate = 12, None, 0
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if cid == b"fmt " and pos + 22 <= len(head):
            rate, block = struct.unpack_from("<I", head, pos + 12)[0], struct.unpack_from("<H", head, pos + 20)[0]
        if cid == b"data":
            return (size // block, rate) if block and 0 < size < 0xFFFFFFFF else None
        pos += 8 + size + (size & 1)
    return None


def wav_declared_frames(head: bytes) -> int | None:
    declared = wav_declared(head)
    return declared[0] if declared else None


def _head(source: str | bytes) -> bytes:
    if not isinstance(source, str):
        return source[:1 << 16]
    path, member = split_location(source)
    if member is not None:
        return b""
    try:
        with open_regular(path) as fh:  # a FIFO would block here; open_audio then says what it is
            return fh.read(1 << 16)
    except OSError:
        return b""


def load_wave(source: str | bytes, sample_rate: int, *, where: str | None = None,
              max_seconds: float | None = None) -> Wave:
    """A file location (path or ``archive.zip::member``) or encoded bytes as a mono wave at ``sample_rate``."""
    where = where or (source if isinstance(source, str) else "audio")
    declared = wav_declared_frames(_head(source))
    with _open(source, where) as f:
        frames, rate, channels = f.frames, f.samplerate, f.channels
        if declared is not None and declared > frames:
            raise KidconsoleError(f"{where}: truncated: {frames} of the {declared} frames its header declares")
        if frames <= 0:
            raise KidconsoleError(f"{where}: empty audio (no samples)")
        if max_seconds is not None and frames > max_seconds * rate:
            raise TooLong(f"{where}: {frames / rate:.1f} s of audio, longer than the limit of {max_seconds:g} s")
        try:
            data = f.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise KidconsoleError(f"{where}: cannot decode the audio: {e}") from e
    if len(data) < frames:
        raise KidconsoleError(f"{where}: truncated: {len(data)} of the {frames} frames its header declares")
    wave = data[:, 0] if channels == 1 else data.mean(axis=1)
    if not np.isfinite(wave).all():
        raise KidconsoleError(f"{where}: non-finite samples")
    if rate != sample_rate:
        wave = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), rate, sample_rate).numpy()
    return Wave(np.ascontiguousarray(wave, dtype=np.float32), frames / rate, rate, channels)


def make_batch(ids: list[str], waves: list[np.ndarray], *, normalize: bool, padding_value: float = 0.0,
               masked: bool = True) -> Batch:
    """One padded batch (no labels), each row normalised as the feature extractor does (``masked``: the
    model takes an attention mask)."""
    lengths = [len(w) for w in waves]
    values = np.full((len(waves), max(lengths)), padding_value, dtype=np.float32)
    for row, w, n in zip(values, waves, lengths):
        row[:n] = w
        if normalize:
            normalize_(row[:n])
    return Batch(index=0, ids=list(ids), input_values=torch.from_numpy(values), masked=masked,
                 lengths=torch.tensor(lengths, dtype=torch.int64))
