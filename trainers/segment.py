"""Audio of any length: voice-activity segmentation and chunked CTC inference with stride, in flat memory.

A long recording is never held whole. ``LongAudio`` reads any window of a file
(or of request bytes) at the model's rate; ``speech_segments`` runs Silero VAD
(the ONNX model that ships in the ``silero-vad`` package, on onnxruntime) over
it block by block and turns the speech probabilities into segments with the
package's own rule (``get_speech_timestamps_from_probs``); ``LongDecoder``
decodes each segment, cut into chunks with overlap as the Hugging Face ASR
pipeline does (``chunk_windows``): each chunk is decoded with ``stride``
seconds of context either side, the context frames are dropped and the rest
concatenated, so a chunk's edges see the audio around them. A segment no
longer than a chunk is one window: exactly the whole-utterance decode.
The frames of a long segment are decoded in pieces cut at a frame whose best
label is the blank, where greedy CTC decoding is unchanged by the cut, so the
logits held stay bounded whatever the length.
"""

from __future__ import annotations

import io
import math
from array import array
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import soundfile as sf

from kidconsole.errors import KidconsoleError

VAD_RATE = 16000
VAD_WINDOW = 512                 # samples per Silero decision at 16 kHz (32 ms)
BLOCK_SECONDS = 30.0             # audio read at once while segmenting
RESAMPLE_MARGIN = 0.05           # seconds of context either side of a resampled window (the filter's reach)


@dataclass(frozen=True)
class VadSettings:
    threshold: float = 0.5             # speech probability from which a window is speech
    min_silence_ms: int = 300          # a pause shorter than this stays inside the segment
    min_speech_ms: int = 250           # shorter bursts are dropped
    speech_pad_ms: int = 100           # kept either side of a segment
    max_segment_seconds: float = 60.0  # a longer stretch of speech is cut at its longest pause


def load_vad():
    """Silero VAD's ONNX model from the package (no download), on onnxruntime, one thread."""
    import torch

    threads = torch.get_num_threads()
    try:
        from importlib.resources import files

        from silero_vad.utils_vad import OnnxWrapper
    except ImportError as e:  # pragma: no cover - a serve/train install has it
        raise KidconsoleError("voice-activity detection needs the silero-vad package (pip install "
                              "'kidconsole[train]'), or use --no-vad") from e
    finally:
        torch.set_num_threads(threads)  # importing silero_vad sets torch to one thread for the whole process
    return OnnxWrapper(str(files("silero_vad.data").joinpath("silero_vad.onnx")), force_onnx_cpu=True)


class LongAudio:
    """A file location or encoded bytes, read a window at a time as mono float32 at ``rate``."""

    def __init__(self, source: str | bytes, rate: int, where: str | None = None):
        from kidconsole.audio import open_audio

        self.where = where or (source if isinstance(source, str) else "audio")
        try:
            self.f = open_audio(source) if isinstance(source, str) else sf.SoundFile(io.BytesIO(source))
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise KidconsoleError(f"{self.where}: not audio that can be decoded: {e}") from e
        self.rate, self.source_rate, self.channels = rate, self.f.samplerate, self.f.channels
        self.frames = int(self.f.frames * rate // self.source_rate)  # at ``rate``
        self.duration = self.f.frames / self.source_rate
        if self.f.frames <= 0:
            raise KidconsoleError(f"{self.where}: empty audio (no samples)")

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _source(self, start: int, stop: int) -> np.ndarray:
        self.f.seek(start)
        try:
            data = self.f.read(stop - start, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise KidconsoleError(f"{self.where}: cannot decode the audio: {e}") from e
        wave = data[:, 0] if self.channels == 1 else data.mean(axis=1)
        if not np.isfinite(wave).all():
            raise KidconsoleError(f"{self.where}: non-finite samples")
        return wave

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` (at ``rate``), resampled with context either side so that windows read
        one after another join as the whole file resampled at once would (to float precision)."""
        stop = min(stop, self.frames)
        if start >= stop:
            return np.zeros(0, np.float32)
        if self.source_rate == self.rate:
            return np.ascontiguousarray(self._source(start, stop), dtype=np.float32)
        import torch
        import torchaudio.functional as AF

        ratio = self.source_rate / self.rate
        margin = int(RESAMPLE_MARGIN * self.source_rate)
        s0 = max(0, int(start * ratio) - margin)
        s1 = min(self.f.frames, int(math.ceil(stop * ratio)) + margin)
        out = AF.resample(torch.from_numpy(np.ascontiguousarray(self._source(s0, s1))), self.source_rate,
                          self.rate).numpy()
        first = int(round(s0 / ratio))
        return np.ascontiguousarray(out[start - first: stop - first], dtype=np.float32)


def speech_segments(audio: LongAudio, settings: VadSettings = VadSettings(), vad=None) -> list[tuple[int, int]]:
    """The speech segments of ``audio`` as (start, end) sample indices at its rate (16 kHz)."""
    import torch
    from silero_vad import get_speech_timestamps_from_probs

    if audio.rate != VAD_RATE:
        raise KidconsoleError(f"voice-activity detection needs a {VAD_RATE} Hz model (this one takes {audio.rate} "
                              f"Hz): use --no-vad")
    vad = vad or load_vad()
    vad.reset_states()
    probs = array("f")
    block = int(BLOCK_SECONDS * VAD_RATE) // VAD_WINDOW * VAD_WINDOW
    with torch.no_grad():
        for start in range(0, audio.frames, block):
            wave = audio.read(start, start + block)
            if len(wave) % VAD_WINDOW:
                wave = np.pad(wave, (0, VAD_WINDOW - len(wave) % VAD_WINDOW))
            for w in torch.from_numpy(wave).view(-1, VAD_WINDOW):
                probs.append(float(vad(w, VAD_RATE)))
    found = get_speech_timestamps_from_probs(
        probs, sampling_rate=VAD_RATE, threshold=settings.threshold, min_speech_duration_ms=settings.min_speech_ms,
        min_silence_duration_ms=settings.min_silence_ms, speech_pad_ms=settings.speech_pad_ms,
        max_speech_duration_s=settings.max_segment_seconds, audio_length_samples=audio.frames)
    return [(int(s["start"]), int(s["end"])) for s in found]


@dataclass(frozen=True)
class Window:
    """A chunk of a segment: samples ``start:end`` decoded, the first ``left`` and last ``right`` of them context
    whose frames are dropped."""
    start: int
    end: int
    left: int
    right: int


def chunk_windows(start: int, end: int, chunk: int, stride: int, align: int = 1) -> list[Window]:
    """The chunks of ``start:end`` (samples): ``chunk`` long, overlapping by ``stride`` on each side, as the
    Hugging Face ASR pipeline cuts them (chunk and stride rounded to the model's samples per frame)."""
    chunk = max(align, int(round(chunk / align)) * align)
    stride = int(round(stride / align)) * align
    if end - start <= chunk:
        return [Window(start, end, 0, 0)]
    if chunk <= 2 * stride:
        raise KidconsoleError(f"chunks of {chunk} samples cannot hold a stride of {stride} on each side")
    out, step = [], chunk - 2 * stride
    for s in range(start, end, step):
        last = s + chunk >= end
        left = 0 if s == start else stride
        if min(s + chunk, end) - s > left:
            out.append(Window(s, min(s + chunk, end), left, 0 if last else stride))
        if last:
            break
    return out


def trim(logits, frames: int, window: Window):
    """A window's frames without those of its context (``logits``: frames x vocab, the valid ones)."""
    n = window.end - window.start
    left = int(round(window.left / n * frames))
    right = int(round(window.right / n * frames))
    return logits[left: frames - right]


@dataclass
class Segment:
    start: float                 # seconds
    end: float
    phones: str = ""
    confidence: list[float] = field(default_factory=list)

    def record(self) -> dict:
        from kidconsole.g2p.hangul import phones_to_hangul

        return {"start": round(self.start, 3), "end": round(self.end, 3), "phones": self.phones,
                "hangul": phones_to_hangul(self.phones), "confidence": self.confidence}


def join_phones(parts: Sequence[str]) -> str:
    """Segments' phones as one recording's: a word boundary between segments (a pause ends a word)."""
    words = [p.strip(" |") for p in parts]
    return " | ".join(w for w in words if w)


class LongDecoder:
    """Segments (or fixed chunks with ``vad=False``) of a ``LongAudio`` to phones, through ``forward``: waves to
    per-wave logits (valid frames x vocab), whichever way the caller batches them (directly, or through the
    server's micro-batcher). ``decode``: logits of one piece to (phones, confidences), the shared CTC decode."""

    def __init__(self, forward: Callable[[list[np.ndarray]], list], decode: Callable[[object], tuple[str, list]], *,
                 rate: int, samples_per_frame: int, chunk_seconds: float = 20.0, stride_seconds: float | None = None,
                 batch_seconds: float = 60.0, vad: bool = True, vad_settings: VadSettings = VadSettings(),
                 min_samples: int = 1):
        self.forward, self.decode = forward, decode
        self.rate, self.align = rate, samples_per_frame
        self.chunk = int(chunk_seconds * rate)
        # the pipeline's default: a sixth of the chunk on each side
        self.stride = int((chunk_seconds / 6 if stride_seconds is None else stride_seconds) * rate)
        self.batch = max(self.chunk, int(batch_seconds * rate))
        self.vad, self.vad_settings, self.min_samples = vad, vad_settings, min_samples
        self._vad_model = None

    def segments(self, audio: LongAudio) -> list[tuple[int, int]]:
        if not self.vad:
            return [(0, audio.frames)]
        if self._vad_model is None:
            self._vad_model = load_vad()
        return speech_segments(audio, self.vad_settings, self._vad_model)

    def run(self, audio: LongAudio) -> list[Segment]:
        """Every segment with its phones, in order."""
        # a segment starts on the recording's frame grid (as the chunks do): a model can be sensitive to where
        # its frames fall (the synthetic voices' decodes lose 2.5 PER points when they start half a frame off)
        spans = [(s - s % self.align, e) for s, e in self.segments(audio) if e - s >= self.min_samples]
        out: list[Segment] = []
        pending: list[tuple[int, Window]] = []   # windows read for the next forward pass
        waves: list[np.ndarray] = []
        pieces: dict[int, _Pieces] = {}

        def flush():
            for (k, w), logits in zip(pending, self.forward(waves)):
                last = w.end == spans[k][1]
                pieces[k].add(trim(logits, len(logits), w), last=last)
                if last:  # decoded: its frames (views of the whole pass's logits) go
                    del pieces[k]
            pending.clear()
            waves.clear()

        for k, (s, e) in enumerate(spans):
            pieces[k] = _Pieces(self, Segment(s / self.rate, e / self.rate), out, split=not self.vad)
            for w in chunk_windows(s, e, self.chunk, self.stride, self.align):
                if sum(len(x) for x in waves) + (w.end - w.start) > self.batch:
                    flush()
                waves.append(audio.read(w.start, w.end))
                pending.append((k, w))
        if pending:
            flush()
        return out


class _Pieces:
    """One segment's frames as they arrive, decoded in pieces cut at a blank frame (greedy CTC emits nothing
    there, so the cut changes nothing) once more than a chunk's worth is held."""

    def __init__(self, owner: LongDecoder, segment: Segment, out: list[Segment], split: bool):
        self.owner, self.segment, self.out, self.split = owner, segment, out, split
        self.held: list = []
        self.frames = 0           # frames held
        self.done = 0             # frames decoded before them
        self.phones: list[str] = []
        self.confidence: list[float] = []
        self.seconds_per_frame = owner.align / owner.rate

    def add(self, logits, last: bool) -> None:
        import torch

        self.held.append(logits)
        self.frames += len(logits)
        limit = self.owner.chunk // self.owner.align
        if self.frames > limit and not last:
            joined = torch.cat(self.held)
            blanks = (joined.argmax(-1) == 0).nonzero().flatten()
            if len(blanks):
                cut = int(blanks[-1]) + 1
                self._decode(joined[:cut], final=False)
                self.held, self.frames = [joined[cut:]], len(joined) - cut
        if last:
            self._decode(torch.cat(self.held) if self.held else None, final=True)

    def _decode(self, logits, final: bool) -> None:
        n = 0 if logits is None else len(logits)
        phones, conf = self.owner.decode(logits) if n else ("", [])
        if self.split:  # no VAD: each piece is a segment of its own, timed by its frames
            start = self.segment.start + self.done * self.seconds_per_frame
            end = self.segment.end if final else start + n * self.seconds_per_frame
            if phones.strip(" |"):
                self.out.append(Segment(start, end, phones, conf))
        else:
            self.phones.append(phones)
            self.confidence += conf
            if final:
                self.segment.phones = " ".join(p for p in self.phones if p)
                self.segment.confidence = self.confidence
                self.out.append(self.segment)
        self.done += n
