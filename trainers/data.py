"""Streaming, sharded batches over a manifest.

Rows (metadata) are held in memory; audio is read lazily by DataLoader
workers. The epoch's batch plan (trainers.batching) is shared by every
process; process ``r`` of ``R`` takes batches r, r+R, ...; its worker ``w`` of
``W`` loads every W-th of those, and the DataLoader's round-robin over workers
gives them back in plan order. So an epoch sees each utterance once, and a
resumed run starts at the batch where it stopped. Bad samples (unreadable,
too long, too short for CTC, unmappable phones) are dropped from their batch
and reported with it.
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torchaudio.functional as AF
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from kidconsole.audio import read_audio
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import Utterance, read_manifest
from kidconsole.phonemes import vocab
from trainers.augment import perturb_speed, speed_factor
from trainers.batching import stable_key


def load_rows(path: str) -> list[Utterance]:
    rows = list(read_manifest(path))
    if not rows:
        raise KidconsoleError(f"{path}: the manifest has no rows")
    return rows


def subset(rows: list[Utterance], fraction: float, seed: int) -> list[Utterance]:
    """A fixed share of the rows, nested (the 20% subset lies inside the 60% one)."""
    if fraction >= 1.0:
        return rows
    ranked = sorted(rows, key=lambda r: stable_key(seed, r.id))
    return ranked[:max(1, math.ceil(fraction * len(rows)))]


def fixed_sample(rows: list[Utterance], n: int | None, seed: int) -> list[Utterance]:
    """The validation sample: the same ``n`` rows on every evaluation and every resume."""
    if n is None or n >= len(rows):
        return rows
    return sorted(rows, key=lambda r: stable_key(seed, r.id))[:n]


def output_frames(num_samples: int, kernels: Sequence[int], strides: Sequence[int]) -> int:
    """CTC frames the feature encoder makes of ``num_samples`` (as transformers computes them)."""
    n = num_samples
    for k, s in zip(kernels, strides):
        n = (n - k) // s + 1
        if n <= 0:
            return 0
    return n


def ctc_feasible(frames: int, labels: Sequence[int]) -> bool:
    # CTC needs a frame per label plus a blank between repeated labels
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return frames >= len(labels) + repeats


@dataclass
class Batch:
    """What a worker yields: the tensors plus what the loop logs."""
    index: int                          # position in this process's plan
    ids: list[str]
    input_values: torch.Tensor | None = None
    lengths: torch.Tensor | None = None  # samples of each utterance (int64); the mask is made from them
    labels: torch.Tensor | None = None
    audio_seconds: float = 0.0
    padding: float = 0.0                # padded share of input_values
    bad: list[tuple[str, str]] = field(default_factory=list)  # (utterance id, reason)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def attention_mask(self) -> torch.Tensor | None:
        """int32, 1 over each utterance's samples (as the feature extractor returns it)."""
        return None if self.lengths is None else attention_mask(self.lengths, self.input_values.shape[1])

    def inputs(self, device, non_blocking: bool = False) -> dict[str, torch.Tensor]:
        """The model's keyword arguments on ``device``; the mask is made there, so it is never copied
        (nor sent from the workers: half the bytes of a batch)."""
        lengths = self.lengths.to(device, non_blocking=non_blocking)
        return {"input_values": self.input_values.to(device, non_blocking=non_blocking),
                "attention_mask": attention_mask(lengths, self.input_values.shape[1]),
                "labels": self.labels.to(device, non_blocking=non_blocking)}

    def pin_memory(self) -> "Batch":
        # DataLoader(pin_memory=True) calls this in its pinning thread; without it a Batch stays in
        # pageable memory and non_blocking copies to the GPU are not asynchronous
        for name in ("input_values", "lengths", "labels"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.pin_memory())
        return self


def attention_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """int32 rows of ``lengths`` ones, padded with zeros to ``width``, on the lengths' device."""
    if lengths.device.type == "cpu":  # numpy fills rows 4x faster than torch compares and casts on a CPU
        mask = np.zeros((len(lengths), width), dtype=np.int32)
        for row, n in zip(mask, lengths.tolist()):
            row[:n] = 1
        return torch.from_numpy(mask)
    return (torch.arange(width, device=lengths.device) < lengths[:, None]).to(torch.int32)


class BatchStream(IterableDataset):
    """One process's batches of one epoch, from ``start`` on, loaded by the DataLoader workers."""

    def __init__(self, rows: list[Utterance], batches: list[list[int]], *, feature_extractor, kernels, strides,
                 sample_rate: int, max_seconds: float, start: int = 0, speed_prob: float = 0.0,
                 seed: int = 0, phase: int = 0, epoch: int = 0):
        self.rows, self.batches, self.start = rows, batches, start
        self.kernels, self.strides = tuple(kernels), tuple(strides)
        self.sample_rate, self.max_seconds = sample_rate, max_seconds
        self.speed_prob, self.seed, self.phase, self.epoch = speed_prob, seed, phase, epoch
        self.vocab = vocab()
        # the feature extractor's settings; its per-call padding and normalisation are done here, once per batch
        if feature_extractor.sampling_rate != sample_rate:
            raise KidconsoleError(f"data.sample_rate {sample_rate} differs from the feature extractor's "
                                  f"{feature_extractor.sampling_rate}")
        self.normalize = bool(feature_extractor.do_normalize)
        self.padding_value = float(feature_extractor.padding_value)

    def __len__(self) -> int:
        return len(self.batches) - self.start

    def __iter__(self):
        info = get_worker_info()
        wid, nworkers = (info.id, info.num_workers) if info else (0, 1)
        for k in range(self.start + wid, len(self.batches), nworkers):
            yield self.load(k)

    def _sample(self, i: int) -> tuple[np.ndarray, list[int]]:
        """One utterance's model input (normalised, unpadded) and label ids; ValueError says why it is bad."""
        row = self.rows[i]
        try:
            labels = [self.vocab[p] for p in row.phones.split()]
        except KeyError as e:
            raise ValueError(f"unmappable phone {e.args[0]!r}") from None
        if not labels:
            raise ValueError("no phones")
        try:
            data, sr = read_audio(row.audio, mono=False)
        except KidconsoleError as e:
            raise ValueError(str(e)) from None
        # the usual mono file: a view of its one column, not a channel average (a copy)
        wave = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
        if sr != self.sample_rate:
            wave = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), sr, self.sample_rate).numpy()
        if len(wave) > self.max_seconds * self.sample_rate:
            raise ValueError(f"longer than data.max_seconds ({len(wave) / self.sample_rate:.1f} s)")
        factor = speed_factor(self.speed_prob, self.seed, self.phase, self.epoch, i)
        wave = perturb_speed(wave, self.sample_rate, factor)
        if not ctc_feasible(output_frames(len(wave), self.kernels, self.strides), labels):
            raise ValueError(f"too short for CTC ({len(wave) / self.sample_rate:.2f} s for {len(labels)} labels)")
        if self.normalize:
            wave = normalize(wave)  # a non-finite sample makes the whole result non-finite
            if len(wave) and not np.isfinite(wave[0]):
                raise ValueError("non-finite samples")
        elif not np.isfinite(wave).all():
            raise ValueError("non-finite samples")
        return wave, labels

    def load(self, k: int) -> Batch:
        waves, labels, ids, bad = [], [], [], []
        for i in self.batches[k]:
            try:
                w, lab = self._sample(i)
            except ValueError as e:
                bad.append((self.rows[i].id, str(e)))
                continue
            waves.append(w)
            labels.append(lab)
            ids.append(self.rows[i].id)
        batch = Batch(index=k, ids=ids, bad=bad)
        if not waves:
            return batch
        batch.input_values, batch.lengths = pad_waves(waves, self.padding_value)
        batch.labels = pad_labels(labels)
        real = sum(len(w) for w in waves)
        batch.audio_seconds = real / self.sample_rate
        batch.padding = 1.0 - real / batch.input_values.numel()
        return batch


def normalize(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance in float32: Wav2Vec2FeatureExtractor's ``do_normalize``, bit for bit,
    with one pass less (numpy's ``var`` would compute the mean again)."""
    wave = np.asarray(wave, dtype=np.float32)
    n = len(wave)
    if n == 0:
        return wave
    centred = wave - np.add.reduce(wave) / n
    var = np.add.reduce(centred * centred) / n
    centred /= np.sqrt(var + 1e-7)
    return centred


def pad_waves(waves: list[np.ndarray], padding_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded float32 input values and the lengths, built once per batch."""
    lengths = np.fromiter(map(len, waves), dtype=np.int64, count=len(waves))
    values = np.empty((len(waves), int(lengths.max())), dtype=np.float32)
    for row, w in zip(values, waves):
        row[:len(w)] = w
        row[len(w):] = padding_value
    return torch.from_numpy(values), torch.from_numpy(lengths)


def pad_labels(labels: list[list[int]]) -> torch.Tensor:
    """Label ids padded with -100 (ignored by the CTC loss)."""
    out = np.full((len(labels), max(map(len, labels))), -100, dtype=np.int64)
    for row, seq in zip(out, labels):
        row[:len(seq)] = seq
    return torch.from_numpy(out)


def _ignore_stop_signals(worker_id: int) -> None:
    # a stop signal goes to the whole process group: the workers must live on
    # until the loop has finished its step and closes the loader
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_loader(stream: BatchStream, num_workers: int, pin_memory: bool = False) -> DataLoader:
    # batch_size=None: the stream yields whole batches; workers > batches would idle
    workers = max(0, min(num_workers, len(stream)))
    return DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      prefetch_factor=4 if workers else None, persistent_workers=False,
                      worker_init_fn=_ignore_stop_signals if workers else None)
