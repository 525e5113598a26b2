"""Live speech: one client's stream of PCM chunks to partial and final phones, with no transport in it.

``StreamSession`` takes 16 kHz samples as they arrive and says what to decode:
Silero VAD (``VADIterator``, the package's streaming form) opens an utterance
at speech and closes it after ``min_silence_ms`` of silence (or the client's
end message, or ``max_utterance_seconds``); while it is open, its audio so far
is decoded every ``partial_ms`` (when the previous partial decode is done: a
busy server decodes fewer partials, never queues them). A partial shows only
what has stabilised: the phones two consecutive decodes agree on, and never
fewer than the last partial showed, so nothing already shown flickers back.
The final of an utterance is the decode of exactly its audio: what an offline
decode of the same samples gives. The server (trainers/serve.py, ``/v1/stream``)
drives it over a WebSocket and decodes through its micro-batcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trainers.segment import VAD_RATE, VAD_WINDOW, VadSettings

RATE = VAD_RATE
MIN_CHUNK_MS, MAX_CHUNK_MS = 10, 1000    # a binary frame outside these is garbage


class StreamError(Exception):
    """What the client sent that ends its stream (the close reason)."""


@dataclass(frozen=True)
class StreamSettings:
    partial_ms: float = 300.0              # decode the open utterance at most this often
    max_utterance_seconds: float = 20.0    # a longer utterance is finalised and the next one begins
    idle_seconds: float = 10.0             # no frame for this long: the stream is stalled and closed
    vad: bool = True                       # False: an utterance ends only at the client's end message
    vad_settings: VadSettings = VadSettings(min_silence_ms=300, speech_pad_ms=100)


@dataclass
class Decode:
    """A decode the session asks for: ``kind`` partial or final, of utterance ``utterance``."""
    kind: str
    utterance: int
    wave: np.ndarray
    start: float                # seconds since the stream began
    end: float
    reason: str = ""            # a final's: vad, client, length, shutdown, stalled


def pcm16(data: bytes) -> np.ndarray:
    """A binary frame (16-bit little-endian mono PCM at 16 kHz, 10-1000 ms) as float samples."""
    if len(data) % 2:
        raise StreamError(f"a frame of {len(data)} bytes: 16-bit PCM comes in whole samples (an even count)")
    ms = len(data) / 2 / RATE * 1000
    if not MIN_CHUNK_MS <= ms <= MAX_CHUNK_MS:
        raise StreamError(f"a frame of {ms:g} ms: send {MIN_CHUNK_MS}-{MAX_CHUNK_MS} ms of 16 kHz 16-bit PCM a frame")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


@dataclass
class _Utterance:
    index: int
    start: int                   # sample
    committed: list[str] = field(default_factory=list)   # phones shown in partials
    previous: list[str] | None = None                    # the last partial decode's phones
    partial_at: int = 0          # samples decoded by the last partial


class StreamSession:
    def __init__(self, settings: StreamSettings = StreamSettings(), vad_model=None, min_samples: int = 1,
                 align: int = 1):
        self.s, self.min_samples, self.align = settings, min_samples, align
        self.vad = None
        if settings.vad:
            from silero_vad import VADIterator

            from trainers.segment import load_vad

            v = settings.vad_settings
            self.vad = VADIterator(vad_model or load_vad(), threshold=v.threshold, sampling_rate=RATE,
                                   min_silence_duration_ms=v.min_silence_ms, speech_pad_ms=v.speech_pad_ms)
        self.buf = np.zeros(0, np.float32)   # samples from ``buf_start`` on
        self.buf_start = 0
        self.received = 0                    # samples so far
        self.vad_at = 0                      # samples given to the VAD
        self.vad_offset = 0                  # where the VAD's own count starts (it restarts at an end message)
        self.open: _Utterance | None = None
        self.utterances = 0
        self.preroll = VAD_WINDOW + int(settings.vad_settings.speech_pad_ms * RATE / 1000)

    def seconds(self, sample: int) -> float:
        return round(sample / RATE, 3)

    def _audio(self, start: int, end: int) -> np.ndarray:
        return self.buf[max(0, start - self.buf_start): max(0, end - self.buf_start)].copy()

    def _begin(self, start: int) -> None:
        # on the stream's frame grid, as the long path's segments (trainers.segment)
        start = max(start - start % self.align, self.buf_start)
        self.open = _Utterance(self.utterances, start)
        self.utterances += 1

    def _final(self, end: int, reason: str) -> Decode:
        u, self.open = self.open, None
        end = max(end, u.start)
        return Decode("final", u.index, self._audio(u.start, end), self.seconds(u.start), self.seconds(end), reason)

    def feed(self, samples: np.ndarray, partial_ok: bool = True) -> list[Decode]:
        """New samples; the decodes they call for, in order."""
        self.buf = np.concatenate([self.buf, samples.astype(np.float32, copy=False)])
        self.received += len(samples)
        out: list[Decode] = []
        if self.vad is None:
            if self.open is None:
                self._begin(self.received - len(samples))
        else:
            import torch

            while self.received - self.vad_at >= VAD_WINDOW:
                w = self._audio(self.vad_at, self.vad_at + VAD_WINDOW)
                self.vad_at += VAD_WINDOW
                event = self.vad(torch.from_numpy(w)) or {}
                if "start" in event and self.open is None:
                    self._begin(self.vad_offset + event["start"])
                if "end" in event and self.open is not None:
                    out.append(self._final(self.vad_offset + event["end"], "vad"))
        u = self.open
        if u is not None and self.received - u.start >= self.s.max_utterance_seconds * RATE:
            out.append(self._final(self.received, "length"))
            self._begin(self.received)  # the speech goes on: the next utterance starts here
            u = self.open
        if u is not None and partial_ok and self.received - max(u.partial_at, u.start) >= self.s.partial_ms * RATE / 1000:
            u.partial_at = self.received
            out.append(Decode("partial", u.index, self._audio(u.start, self.received), self.seconds(u.start),
                              self.seconds(self.received)))
        keep = self.open.start if self.open is not None else self.received - self.preroll
        if keep > self.buf_start:
            self.buf = self.buf[keep - self.buf_start:]
            self.buf_start = keep
        return out

    def end(self, reason: str = "client") -> list[Decode]:
        """The client's end message (or the stream closing): the open utterance's final; the VAD starts afresh."""
        out = [self._final(self.received, reason)] if self.open is not None else []
        if self.vad is not None:
            self.vad.reset_states()
            self.vad_offset = self.vad_at = self.received
        return out

    def partial_event(self, d: Decode, phones: str) -> dict | None:
        """The partial to send for a partial decode's phones, None when nothing new has stabilised."""
        u = self.open
        if u is None or u.index != d.utterance:
            return None  # the utterance ended meanwhile: its final says it all
        now = phones.split()
        previous, u.previous = u.previous, now
        if previous is None:
            return None
        stable = []
        for a, b in zip(previous, now):
            if a != b:
                break
            stable.append(a)
        if len(stable) <= len(u.committed) or stable[:len(u.committed)] != u.committed:
            return None
        u.committed = stable
        return {"type": "partial", "utterance": d.utterance, "phones": " ".join(stable), "start": d.start,
                "end": d.end}

    @staticmethod
    def final_event(d: Decode, result: dict | None) -> dict:
        r = result or {"phones": "", "hangul": "", "confidence": []}
        return {"type": "final", "utterance": d.utterance, "phones": r["phones"], "hangul": r["hangul"],
                "confidence": r["confidence"], "start": d.start, "end": d.end, "reason": d.reason}
