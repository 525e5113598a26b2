"""Streaming, sharded batches over a manifest.

Rows (metadata) are held in memory; audio is read lazily by DataLoader
workers. The epoch's batch plan (trainers.batching) is shared by every
process; process ``r`` of ``R`` takes batches r, r+R, ...; its worker ``w`` of
``W`` loads every W-th of those, and the DataLoader's round-robin over workers
gives them back in plan order. So an epoch sees each utterance once, and a
resumed run starts at the batch where it stopped. Speed perturbation and the
waveform chain (trainers.wave_augment) are drawn per (seed, phase, epoch,
utterance) in the workers; concatenation joins rows of one batch. Bad samples (unreadable,
too long, too short for CTC, unmappable phones) are dropped from their batch
and reported with it; rows the trainer cannot use at all (manifest.unusable) are
skipped when the manifest is loaded. Any other error while loading a batch is a
bug: the worker sends it back in the batch, and the loader raises it in the main
process naming the manifest line and the row.

A read that never ends: a FIFO or a device named as audio is refused before any
read (``kidconsole.audio`` checks the descriptor's type) and counted as a bad
sample. A regular file whose read blocks (a hung network mount) cannot be
abandoned by the worker that issued it (libsndfile retries an interrupted read,
and a read in the kernel's uninterruptible wait outlives any signal), and the
mount's other files would block next: so the main process bounds its wait for
each batch (``data.read_timeout``) and past it ends the run, naming the files of
the batch it waited for; while it waits, a stop request is honoured at once
(``StopWhileWaiting``: the loop checkpoints at its last step). Both need the
reads to happen in DataLoader workers (``data.num_workers`` >= 1).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torchaudio.functional as AF
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from kidconsole.audio import open_audio, read_into
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import Utterance, find_line, numbered_rows, unusable
from kidconsole.phonemes import WORD_SEP, vocab
from kidconsole.subset.curriculum import curriculum_phases
from kidconsole.subset.strata import Strata
from trainers.augment import perturb_speed
from trainers.wave_augment import Chain, join_groups, joined_labels
from trainers.batching import stable_key


def load_rows(path: str, bad: list[tuple[str, str]] | None = None, unique: bool = False) -> list[Utterance]:
    """The usable rows of a manifest. A row the trainer cannot use (manifest.unusable) is skipped and,
    when ``bad`` is given, appended to it as (id, "file:line: why"). ``unique``: an id that appears
    twice is an error naming the ids and their lines (an evaluation scores each id against one
    reference, so both rows would be judged against the same one)."""
    rows, first_line, repeats = [], {}, {}
    for lineno, row in numbered_rows(path):
        why = unusable(row)
        if why:
            if bad is not None:
                bad.append((str(row.id), f"{path}:{lineno}: {why}"))
            continue
        if unique:
            first = first_line.setdefault(row.id, lineno)
            if first != lineno:
                repeats.setdefault(row.id, [first]).append(lineno)
        rows.append(row)
    if repeats:
        named = "; ".join(f"{uid} (lines {', '.join(map(str, lines))})" for uid, lines in list(repeats.items())[:5])
        more = f" and {len(repeats) - 5} more" if len(repeats) > 5 else ""
        raise KidconsoleError(f"{path}: {len(repeats)} utterance ids appear more than once: {named}{more}; "
                              f"an evaluation manifest needs one row per id")
    if not rows:
        skipped = f" ({len(bad)} unusable, the first: {bad[0][1]})" if bad else ""
        raise KidconsoleError(f"{path}: the manifest has no usable rows{skipped}")
    return rows


def subset(rows: list[Utterance], fraction: float, seed: int) -> list[Utterance]:
    """A phase's ``fraction`` of the rows, drawn as the subset builder draws its ``train_phaseN`` manifests
    (kidconsole.subset.curriculum): every age x SNR x duration cell keeps that share of its hours, and the
    subsets are nested (the 20% lies inside the 60%). The order within a cell is a hash of (seed, id), so
    the draw does not depend on the manifest's row order."""
    if fraction >= 1.0:
        return rows
    strata = Strata()
    duration = np.array([r.duration for r in rows], dtype=np.float64)
    cell = strata.cells(np.array([np.nan if r.age_years is None else r.age_years for r in rows], dtype=np.float64),
                        np.array([np.nan if r.snr is None else r.snr for r in rows], dtype=np.float64), duration)
    key = np.array([stable_key(seed, r.id) for r in rows], dtype=np.uint64)
    keep = curriculum_phases(np.arange(len(rows)), cell, duration, (fraction,), key)[0]
    if not len(keep):  # a share smaller than any one utterance of a cell: the first in key order
        keep = [int(np.argmin(key))]
    return [rows[i] for i in keep]


def weighted(rows: list[Utterance], weight: float, seed: int) -> list[Utterance]:
    """The rows ``weight`` times over: each whole time all of them, the rest a fixed, nested share."""
    whole, rest = int(weight), weight - int(weight)
    return rows * whole + (subset(rows, rest, seed) if rest > 1e-9 else [])


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


_SMALL = ("lengths", "labels")  # a Batch's tensors of a few numbers per utterance


@dataclass
class Sample:
    """One training utterance while its batch is made: its rows (several when joined), label ids, length in
    samples, audio (an open file or a wave), each row's speed factor and the augmentations applied."""
    rows: list[int]
    labels: list[int]
    n: int
    audio: object
    factors: list[float]
    applied: list[str]

    def id(self, rows: list[Utterance]) -> str:
        return "+".join(rows[i].id for i in self.rows)


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
    speed_perturbed: int = 0            # utterances played at another speed (augment.speed_factor)
    augmented: dict[str, int] = field(default_factory=dict)  # utterances given each waveform augmentation
    bad: list[tuple[str, str]] = field(default_factory=list)  # (utterance id, reason)
    error: str | None = None            # an unforeseen error while loading (a bug), raised by the Loader
    masked: bool = True                 # the model takes an attention mask (the feature extractor's setting)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def attention_mask(self) -> torch.Tensor | None:
        """True over each utterance's samples (the feature extractor's int32 mask, as booleans)."""
        if self.lengths is None or not self.masked:
            return None
        return attention_mask(self.lengths, self.input_values.shape[1])

    def inputs(self, device, non_blocking: bool = False) -> dict[str, torch.Tensor]:
        """The model's keyword arguments on ``device``; the mask is made there, so it is never copied
        (nor sent from the workers)."""
        out = {"input_values": self.input_values.to(device, non_blocking=non_blocking)}
        if self.labels is not None:  # audio to transcribe has none
            out["labels"] = self.labels.to(device, non_blocking=non_blocking)
        if self.masked:
            lengths = self.lengths.to(device, non_blocking=non_blocking)
            out["attention_mask"] = attention_mask(lengths, self.input_values.shape[1])
        return out

    def __getstate__(self) -> dict:
        # from a DataLoader worker the small tensors travel inside the pickle, as arrays: each tensor
        # would get a shared-memory file of its own, about 0.2 ms a batch each on a CPU
        state = dict(self.__dict__)
        for name in _SMALL:
            if state[name] is not None:
                state[name] = state[name].numpy()
        return state

    def __setstate__(self, state: dict) -> None:
        for name in _SMALL:
            if state[name] is not None:
                state[name] = torch.from_numpy(state[name])
        self.__dict__.update(state)

    def pin_memory(self) -> "Batch":
        # DataLoader(pin_memory=True) calls this in its pinning thread; without it a Batch stays in
        # pageable memory and non_blocking copies to the GPU are not asynchronous
        for name in ("input_values", "lengths", "labels"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.pin_memory())
        return self


def attention_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Rows of ``lengths`` Trues, padded with False to ``width``, on the lengths' device. Booleans, not the
    feature extractor's int32: wav2vec2 reads the mask only through sums and comparisons, and a mask as
    large as the audio is a quarter of the memory to write as booleans."""
    if lengths.device.type == "cpu":  # numpy compares 2x faster than torch on a CPU
        return torch.from_numpy(np.arange(width) < lengths.numpy()[:, None])
    return torch.arange(width, device=lengths.device) < lengths[:, None]


class BatchStream(IterableDataset):
    """One process's batches of one epoch, from ``start`` on, loaded by the DataLoader workers. ``chains``:
    the speed and waveform augmentation (trainers.wave_augment.Chain) of each source of rows, ``sources``
    the source of each row (None: all from the first); no chain, no augmentation."""

    def __init__(self, rows: list[Utterance], batches: list[list[int]], *, feature_extractor, kernels, strides,
                 sample_rate: int, max_seconds: float, start: int = 0, chains: Sequence[Chain] = (),
                 sources: Sequence[int] | None = None, batch_seconds: float = float("inf"),
                 seed: int = 0, phase: int = 0, epoch: int = 0, manifest: str = ""):
        self.rows, self.batches, self.start = rows, batches, start
        self.manifest = manifest  # where the rows come from, for an error message
        self.kernels, self.strides = tuple(kernels), tuple(strides)
        self.sample_rate, self.max_seconds, self.batch_seconds = sample_rate, max_seconds, batch_seconds
        self.chains = list(chains) or [Chain(sample_rate=sample_rate)]
        self.sources = None if sources is None else np.asarray(sources, dtype=np.int32)
        self.joins = any(c.wf.concat.prob > 0 for c in self.chains)
        self.seed, self.phase, self.epoch = seed, phase, epoch
        self.vocab = vocab()
        # the feature extractor's settings; its per-call padding and normalisation are done here, once per batch
        if feature_extractor.sampling_rate != sample_rate:
            raise KidconsoleError(f"data.sample_rate {sample_rate} differs from the feature extractor's "
                                  f"{feature_extractor.sampling_rate}")
        self.normalize = bool(feature_extractor.do_normalize)
        self.padding_value = float(feature_extractor.padding_value)
        self.masked = bool(feature_extractor.return_attention_mask)

    def __len__(self) -> int:
        return len(self.batches) - self.start

    def __iter__(self):
        info = get_worker_info()
        wid, nworkers = (info.id, info.num_workers) if info else (0, 1)
        for k in range(self.start + wid, len(self.batches), nworkers):
            yield self.load(k)

    def chain(self, i: int) -> Chain:
        return self.chains[0 if self.sources is None else self.sources[i]]

    def key(self, i: int) -> tuple[int, int, int, int]:
        """What row ``i``'s augmentation is drawn from: the same in any worker, process or resume."""
        return self.seed, self.phase, self.epoch, i

    def groups(self, k: int) -> list[list[int]]:
        """Batch ``k``'s rows as the model gets them: alone, or joined by concatenation."""
        batch = self.batches[k]
        if not self.joins:
            return [[i] for i in batch]
        seconds = [self.rows[i].duration / self.chain(i).speed(*self.key(i)) for i in batch]
        return join_groups(batch, seconds, self.chain, self.key, self.batch_seconds, self.max_seconds)

    def _prepare(self, i: int, decode: bool = False) -> tuple[list[int], int, object, float]:
        """One utterance's label ids, its length in samples, its audio and its speed factor. The audio is
        the file, open, when it can be decoded straight into the batch (mono, at the sample rate, no speed
        change, no ``decode`` asked: the usual case), else the wave already resampled and perturbed.
        ValueError or KidconsoleError (unreadable audio) says why it is bad."""
        row = self.rows[i]
        try:
            labels = [self.vocab[p] for p in row.phones.split()]
        except KeyError as e:
            raise ValueError(f"unmappable phone {e.args[0]!r}") from None
        if not labels:
            raise ValueError("no phones")
        f = open_audio(row.audio)
        try:
            if f.frames > self.max_seconds * f.samplerate:  # known from the header: nothing decoded
                raise ValueError(f"longer than data.max_seconds ({f.frames / f.samplerate:.1f} s)")
            factor = self.chain(i).speed(*self.key(i))
            if f.channels == 1 and f.samplerate == self.sample_rate and factor == 1.0 and not decode:
                n, audio = f.frames, f  # left open: load() decodes it into the batch
            else:
                with f:
                    n, audio = self._transformed(f, row.audio, factor)
            if not ctc_feasible(output_frames(n, self.kernels, self.strides), labels):
                raise ValueError(f"too short for CTC ({n / self.sample_rate:.2f} s for {len(labels)} labels)")
        except BaseException:
            f.close()
            raise
        return labels, n, audio, factor

    def _prepare_group(self, group: list[int], bad: list) -> Sample | None:
        """One training utterance from the rows of ``group``: one row, or several joined (a bad part is
        added to ``bad`` and left out), through its chain. None when every part was bad. A single row raises
        as _prepare."""
        chain = self.chain(group[0])
        touched = chain.touches(self.key(group[0]))
        if len(group) == 1:
            parts = [(group[0], *self._prepare(group[0], decode=touched))]
        else:
            parts = []
            for i in group:
                try:
                    parts.append((i, *self._prepare(i, decode=True)))
                except (ValueError, KidconsoleError) as e:
                    bad.append((self.rows[i].id, str(e)))
            if not parts:
                return None
        applied = ["concat"] * len(parts) if len(parts) > 1 else []
        if len(parts) == 1:
            i, labels, n, audio, factor = parts[0]
        else:
            gap = np.zeros(int(chain.wf.concat.gap_ms * self.sample_rate / 1000), dtype=np.float32)
            audio = np.concatenate([x for p in parts for x in (gap, p[3])][1:])
            labels = joined_labels([p[1] for p in parts], self.vocab[WORD_SEP])
            n = len(audio)
        if touched:
            audio, more = chain.apply(audio, self.key(group[0]), self.rows, self.rows[group[0]].speaker)
            applied += more
        return Sample([p[0] for p in parts], labels, n, audio, [p[4] for p in parts], applied)

    def _transformed(self, f, location: str, factor: float) -> tuple[int, np.ndarray]:
        """The whole file decoded, channels averaged, resampled to the sample rate, speed-perturbed."""
        data = np.empty((f.frames, f.channels), dtype=np.float32)
        data = data[:read_into(f, data, location)]
        wave = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
        if f.samplerate != self.sample_rate:
            wave = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), f.samplerate, self.sample_rate).numpy()
        wave = perturb_speed(wave, self.sample_rate, factor)
        return len(wave), wave

    def _fill(self, row: np.ndarray, audio, location: str) -> None:
        """Writes one utterance's model input into its batch row (exactly its length); raises as _prepare."""
        if isinstance(audio, np.ndarray):
            row[:] = audio
        else:
            got = read_into(audio, row, location)
            if got < len(row):
                raise ValueError(f"cannot decode audio {location}: {got} of the header's {len(row)} frames")
        if self.normalize:
            normalize_(row)  # a non-finite sample makes the whole row non-finite
            if len(row) and not np.isfinite(row[0]):
                raise ValueError("non-finite samples")
        elif not np.isfinite(row).all():
            raise ValueError("non-finite samples")

    def load(self, k: int) -> Batch:
        """Batch ``k``: each file's header is read first, so the padded array is allocated once and every
        utterance decoded and normalised in its own row (no per-utterance array, no padding copy)."""
        samples: list[Sample] = []
        bad: list[tuple[str, str]] = []
        with contextlib.ExitStack() as open_files:
            for group in self.groups(k):
                try:
                    sample = self._prepare_group(group, bad)
                except (ValueError, KidconsoleError) as e:
                    bad.append((self.rows[group[0]].id, str(e)))
                    continue
                except Exception as e:
                    return self._failed(k, group[0], e)
                if sample is None:
                    continue
                if not isinstance(sample.audio, np.ndarray):
                    open_files.enter_context(sample.audio)
                samples.append(sample)
            if not samples:
                return Batch(index=k, ids=[], bad=bad)
            values = np.empty((len(samples), max(s.n for s in samples)), dtype=np.float32)
            keep = []
            for j, (row, s) in enumerate(zip(values, samples)):
                location = self.rows[s.rows[0]].audio
                try:
                    self._fill(row[:s.n], s.audio, location)
                except (ValueError, KidconsoleError) as e:
                    bad.append((s.id(self.rows), str(e)))
                    continue
                except Exception as e:
                    return self._failed(k, s.rows[0], e)
                row[s.n:] = self.padding_value
                keep.append(j)
        if len(keep) < len(samples):  # rare: a file that failed while decoding
            if not keep:
                return Batch(index=k, ids=[], bad=bad)
            samples = [samples[j] for j in keep]
            values = np.ascontiguousarray(values[keep, :max(s.n for s in samples)])
        lengths = [s.n for s in samples]
        batch = Batch(index=k, ids=[s.id(self.rows) for s in samples], bad=bad, masked=self.masked,
                      input_values=torch.from_numpy(values), lengths=torch.tensor(lengths, dtype=torch.int64),
                      labels=pad_labels([s.labels for s in samples]))
        real = sum(lengths)
        batch.audio_seconds = real / self.sample_rate
        batch.padding = 1.0 - real / values.size
        batch.speed_perturbed = sum(f != 1.0 for s in samples for f in s.factors)
        batch.augmented = dict(Counter(name for s in samples for name in s.applied))
        return batch

    def _failed(self, k: int, i: int, e: Exception) -> Batch:
        """Batch ``k`` carrying an unforeseen error on row ``i`` to the main process (the traceback goes
        to the log here). Raised in a worker, it would reach the loop as "Caught X in DataLoader worker",
        without the row."""
        traceback.print_exc()
        row = self.rows[i]
        line = find_line(self.manifest, row.id) if self.manifest else None
        where = f"{self.manifest}:{line}" if line else (self.manifest or "manifest")
        return Batch(index=k, ids=[], error=f"{where}: row {row.id}: {type(e).__name__}: {e} "
                                            f"(while loading it; the traceback is in the log)")


def normalize_(wave: np.ndarray) -> None:
    """In place, zero mean and unit variance in float32: Wav2Vec2FeatureExtractor's ``do_normalize`` to
    float32 rounding (within 1e-6). Its pairwise sums take over twice as long as einsum's SIMD ones
    and need a temporary for the squares. Not ``np.dot``: OpenBLAS threads a dot over 10k samples,
    and every DataLoader worker would start a thread per core."""
    n = len(wave)
    if n == 0:
        return
    wave -= np.einsum("i->", wave) / n
    wave /= np.sqrt(np.einsum("i,i->", wave, wave) / n + 1e-7)


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


class StopWhileWaiting(Exception):
    """A stop was requested while the loader waited for a batch (no step in flight: the loop can checkpoint)."""


POLL_SECONDS = 1.0  # how often a waiting loader looks at the stop flag and the clock


class Loader(DataLoader):
    """The DataLoader of a BatchStream: a batch that carries an error is raised here, in the main process.
    With workers, the wait for each batch is bounded (``wait_bound`` seconds: past it, ``KidconsoleError``
    naming the batch's files) and interrupted by ``should_stop()`` (``StopWhileWaiting``)."""

    def __init__(self, stream: BatchStream, *args, wait_bound: float | None = None,
                 should_stop: Callable[[], bool] | None = None, **kwargs):
        watched = kwargs.get("num_workers", 0) > 0 and (wait_bound is not None or should_stop is not None)
        super().__init__(stream, *args, timeout=POLL_SECONDS if watched else 0, **kwargs)
        self.wait_bound, self.should_stop = wait_bound, should_stop or (lambda: False)

    def __iter__(self):
        it, expected, waited = super().__iter__(), self.dataset.start, 0.0
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except RuntimeError as e:  # no batch within POLL_SECONDS (torch says so only in words)
                if not self.timeout or not str(e).startswith("DataLoader timed out"):
                    raise
                waited += self.timeout
                if self.should_stop():
                    raise StopWhileWaiting() from None
                if self.wait_bound is not None and waited >= self.wait_bound:
                    raise KidconsoleError(self._blocked(expected, waited)) from None
                continue
            waited = 0.0
            if batch.error:
                raise KidconsoleError(batch.error)
            expected = batch.index + 1
            yield batch

    def _blocked(self, k: int, waited: float) -> str:
        stream = self.dataset
        files = [stream.rows[i].audio for i in stream.batches[k]] if k < len(stream.batches) else []
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        return (f"no batch from the DataLoader workers for {waited:.0f} s (data.read_timeout): reading one of the "
                f"files of batch {k} of {stream.manifest or 'the manifest'} blocked ({shown}); a hung network "
                f"mount? The run resumes from its last checkpoint once the files read again")


def until_stopped(batches: Iterable) -> Iterator:
    """The batches of a loader, ending where a stop interrupted its wait for one (``StopWhileWaiting``); the
    caller's own stop check then tells it stopped."""
    try:
        yield from batches
    except StopWhileWaiting:
        return


def make_loader(stream: BatchStream, num_workers: int, pin_memory: bool = False, *, wait_bound: float | None = None,
                should_stop: Callable[[], bool] | None = None) -> Loader:
    # batch_size=None: the stream yields whole batches; workers > batches would idle
    workers = max(0, min(num_workers, len(stream)))
    return Loader(stream, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                  prefetch_factor=4 if workers else None, persistent_workers=False,
                  worker_init_fn=_ignore_stop_signals if workers else None, wait_bound=wait_bound,
                  should_stop=should_stop)


def end_workers(timeout: float = 5.0) -> int:
    """Kills the DataLoader workers still alive as the trainer ends; returns how many there were. An error
    that leaves the loop can leave its loader open (its iterator held by the traceback); the workers ignore
    SIGTERM, and that is all Python's exit sends them before it waits for them: forever. A worker holds
    nothing worth keeping."""
    left = multiprocessing.active_children()
    if not left:
        return 0
    # torch's SIGCHLD handler would raise "worker killed by signal" into the caller
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        for p in left:
            p.kill()
        for p in left:
            p.join(timeout)
    finally:
        signal.signal(signal.SIGCHLD, previous)
    return len(left)
