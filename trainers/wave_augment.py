"""The waveform augmentation chain (``augment.waveform``), applied in the data workers.

Every decision and every value is drawn from a generator seeded with (seed, phase, epoch, utterance,
augmentation), as speed perturbation's is: the same utterance gets the same augmentation in any worker,
any process and after a resume, and switching one augmentation on does not change another's draws.
The order (``kidconsole.config.augment.ORDER``): speed on each part, concatenation, pitch and formants
(one Praat pass), reverberation, noise from recordings, babble, coloured noise, gain.

Implementations, measured in docs/benchmarks/augment.md:
- pitch and formants: Praat's "Change gender" (PSOLA; parselmouth) on one pitch analysis: f0 moved
  with the formants kept, formants scaled with f0 kept, or both in one pass. audiomentations' PitchShift
  (a phase vocoder, faster) transposes the spectral envelope with f0, so it cannot move a voice's pitch
  and its vocal tract apart, which making adults child-like needs; torchaudio's pitch_shift took 13 s
  for 6 s of audio (its resampler at a ratio of 2^(k/12)).
- noise, babble, coloured noise, gain: a few lines of numpy each, written here so that the SNR is the
  one asked (the whole utterance's power over the noise's, as Lhotse and audiomentations define it)
  and every draw comes from the utterance's generator (audiomentations draws from the global one).
- reverberation: scipy's overlap-add convolution with the responses of ``trainers.rooms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

from kidconsole.audio import open_audio
from kidconsole.config import Augment
from kidconsole.config.augment import ORDER, Waveform
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import Utterance
from trainers.augment import speed_factor
from trainers.rooms import Responses, audio_files, folder_responses, simulated_rooms

# each augmentation's own stream of draws (speed perturbation's is 7, SpecAugment's 11)
TAGS = {name: 21 + i for i, name in enumerate(ORDER)}
PITCH_FLOOR, PITCH_CEILING = 75.0, 600.0  # Hz: a man's low voice to a young child's high one
MAX_NOISE_FILES = 100_000
# power slope of each colour's spectrum in dB an octave, as an exponent of frequency on the amplitude
COLOR_EXPONENT = {"white": 0.0, "pink": -0.5, "brown": -1.0, "blue": 0.5, "violet": 1.0}


def stream(seed: int, phase: int, epoch: int, index: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, phase, epoch, index, TAGS[name]])


@dataclass
class Resources:
    """What the chain reads besides the utterance: listed or made once, in the main process."""
    noise_files: list[str] = field(default_factory=list)
    responses: Responses | None = None


def prepare(wf: Waveform, sample_rate: int, key: str = "augment.waveform") -> Resources:
    """The noise files and impulse responses ``wf`` needs; an error naming the key and the folder when a
    folder holds none."""
    res = Resources()
    if wf.noise.prob > 0:
        res.noise_files = audio_files(wf.noise.folder, "noise recordings", f"{key}.noise.folder", MAX_NOISE_FILES)
    if wf.reverb.prob > 0:
        res.responses = (folder_responses(wf.reverb.folder, sample_rate, f"{key}.reverb.folder")
                         if wf.reverb.folder else
                         simulated_rooms(wf.reverb.rooms, tuple(wf.reverb.rt60), sample_rate))
    return res


def augment_key(phase, pi: int, m: int) -> str:
    """The config key of the waveform chain of phase ``pi``'s train manifest ``m``, for error messages."""
    own = phase.manifests[m].augment if phase.manifests is not None else None
    choice, where = (own, f"phases.{pi}.manifests.{m}.augment") if own is not None else \
        (phase.augment, f"phases.{pi}.augment")
    return f"augmentations.{choice}.waveform" if isinstance(choice, str) else f"{where}.waveform"


class Chain:
    """One source of rows' augmentation: its speed perturbation and its waveform chain."""

    def __init__(self, augment: Augment | None = None, sample_rate: int = 16000, resources: Resources | None = None):
        self.speed_prob = augment.speed_prob if augment else 0.0
        self.wf = augment.waveform if augment else Waveform()
        self.active = self.wf.active()
        self.sample_rate = sample_rate
        self.res = resources or Resources()

    def speed(self, seed: int, phase: int, epoch: int, index: int) -> float:
        return speed_factor(self.speed_prob, seed, phase, epoch, index)

    def fires(self, name: str, key: tuple[int, int, int, int]) -> np.random.Generator | None:
        """The utterance's generator for ``name``, past its decision, when ``name`` applies to it; else None."""
        prob = getattr(self.wf, name).prob
        if prob <= 0:
            return None
        rng = stream(*key, name)
        return rng if rng.random() < prob else None

    def touches(self, key: tuple[int, int, int, int]) -> bool:
        """Whether any augmentation after concatenation applies to the utterance (its audio must be decoded)."""
        return any(self.fires(name, key) is not None for name in self.active if name != "concat")

    def apply(self, wave: np.ndarray, key: tuple[int, int, int, int], rows: Sequence[Utterance],
              speaker: str | None = None) -> tuple[np.ndarray, list[str]]:
        """The utterance's wave through the chain (its length kept) and the augmentations applied to it.
        ``rows``: the stream's rows, where babble comes from."""
        applied = []
        pitch, vtlp = self.fires("pitch", key), self.fires("vtlp", key)
        if pitch is not None or vtlp is not None:
            p = self.wf.pitch
            semitones = float(pitch.uniform(*p.semitones)) if pitch is not None and p.median_hz is None else 0.0
            median = float(pitch.uniform(*p.median_hz)) if pitch is not None and p.median_hz is not None else None
            warp = float(vtlp.uniform(*self.wf.vtlp.warp)) if vtlp is not None else 1.0
            seed = int((pitch or vtlp).integers(2 ** 31))
            out = change_voice(wave, self.sample_rate, semitones=semitones, median_hz=median, warp=warp, seed=seed)
            if out is not None:  # an utterance without a voiced frame keeps its voice
                wave = out
                applied += [n for n, r in (("pitch", pitch), ("vtlp", vtlp)) if r is not None]
        rng = self.fires("reverb", key)
        if rng is not None:
            irs = self.res.responses.irs
            wave = reverberate(wave, irs[int(rng.integers(len(irs)))])
            applied.append("reverb")
        rng = self.fires("noise", key)
        if rng is not None:
            files = self.res.noise_files
            noise = read_segment(files[int(rng.integers(len(files)))], len(wave), self.sample_rate, rng)
            if mix_at_snr(wave, noise, float(rng.uniform(*self.wf.noise.snr_db))):
                applied.append("noise")
        rng = self.fires("babble", key)
        if rng is not None:
            noise = babble(rows, len(wave), self.sample_rate, int(rng.integers(self.wf.babble.speakers[0],
                                                                                self.wf.babble.speakers[1] + 1)),
                           speaker, rng)
            if noise is not None and mix_at_snr(wave, noise, float(rng.uniform(*self.wf.babble.snr_db))):
                applied.append("babble")
        rng = self.fires("colored_noise", key)
        if rng is not None:
            color = self.wf.colored_noise.colors[int(rng.integers(len(self.wf.colored_noise.colors)))]
            if mix_at_snr(wave, colored_noise(len(wave), color, rng), float(rng.uniform(*self.wf.colored_noise.snr_db))):
                applied.append("colored_noise")
        rng = self.fires("gain", key)
        if rng is not None:
            wave = np.clip(wave * np.float32(10 ** (rng.uniform(*self.wf.gain.db) / 20)), -1.0, 1.0)
            applied.append("gain")
        return wave, applied


# ---------- pitch and formants ----------

def change_voice(wave: np.ndarray, sample_rate: int, *, semitones: float = 0.0, median_hz: float | None = None,
                 warp: float = 1.0, seed: int = 0) -> np.ndarray | None:
    """The wave with its f0 moved by ``semitones`` (or its f0 median taken to ``median_hz``) and its formants
    scaled by ``warp``, duration kept: Praat's Change gender on one pitch analysis. None when Praat finds
    no voiced frame (nothing to move). Praat's overlap-add draws random numbers (for unvoiced stretches):
    its generator is seeded with ``seed`` first, or two workers would make two different waves."""
    import parselmouth
    from parselmouth.praat import call, run

    run(f"random_initializeWithSeedUnsafelyButPredictably ({int(seed)})")
    sound = parselmouth.Sound(wave.astype(np.float64), sample_rate)
    # a 20 ms step: the pulses PSOLA moves are found by cross-correlation around this contour; 10 ms costs twice
    pitch = sound.to_pitch_ac(time_step=0.02, pitch_floor=PITCH_FLOOR, pitch_ceiling=PITCH_CEILING)
    median = call(pitch, "Get quantile", 0, 0, 0.5, "Hertz")
    if not np.isfinite(median):
        return None
    target = median_hz if median_hz is not None else median * 2 ** (semitones / 12)
    out = call([sound, pitch], "Change gender", warp, target, 1.0, 1.0).values[0]
    return fit_length(out.astype(np.float32), len(wave))


def fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-padded to ``n`` samples (Praat's resampling can differ by a sample or two)."""
    if len(wave) >= n:
        return wave[:n]
    return np.concatenate([wave, np.zeros(n - len(wave), dtype=wave.dtype)])


# ---------- reverberation ----------

def reverberate(wave: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """``wave`` in the room of ``ir`` (its direct path first): the same length, the direct sound where the
    dry one was."""
    from scipy.signal import oaconvolve

    return oaconvolve(wave, ir)[:len(wave)].astype(np.float32)


# ---------- noise ----------

def power(x: np.ndarray) -> float:
    return float(np.einsum("i,i->", x, x) / max(len(x), 1))


def mix_at_snr(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> bool:
    """Adds ``noise`` to ``wave`` in place, scaled so that the wave's power over the added noise's is
    ``snr_db``; False (nothing added) when either is silent."""
    p_wave, p_noise = power(wave), power(noise)
    if p_wave <= 0 or p_noise <= 0:
        return False
    wave += noise * np.float32(np.sqrt(p_wave / (p_noise * 10 ** (snr_db / 10))))
    return True


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Stationary Gaussian noise whose power falls (pink, brown) or rises (blue, violet) with frequency."""
    from scipy import fft

    exponent = COLOR_EXPONENT[color]
    if exponent == 0.0:
        return rng.standard_normal(n, dtype=np.float32)
    size = fft.next_fast_len(n, real=True)  # an FFT of a length with a large prime factor is many times slower
    spec = fft.rfft(rng.standard_normal(size, dtype=np.float32))
    f = np.arange(len(spec), dtype=np.float32)
    f[0] = f[1] if len(f) > 1 else 1.0  # no infinite power at 0 Hz
    spec *= f ** np.float32(exponent)
    return fft.irfft(spec, size)[:n].astype(np.float32, copy=False)


@lru_cache(maxsize=8)
def _resampler(orig: int, new: int):
    # its kernel is made once: for 44.1 to 16 kHz that is most of the work of resampling a few seconds
    import torchaudio.transforms

    return torchaudio.transforms.Resample(orig, new)


def read_segment(location: str, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples at ``sample_rate`` from a random place in an audio file, the file repeated when shorter."""
    with open_audio(location) as f:
        need = int(np.ceil(n * f.samplerate / sample_rate))
        if f.frames > need:
            f.seek(int(rng.integers(0, f.frames - need + 1)))
        data = f.read(min(need, f.frames), dtype="float32", always_2d=True)
        rate = f.samplerate
    seg = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    if rate != sample_rate and len(seg):
        with torch.no_grad():
            seg = _resampler(rate, sample_rate)(torch.from_numpy(np.ascontiguousarray(seg))).numpy()
    if not len(seg):
        return np.zeros(n, dtype=np.float32)
    return np.resize(seg, n).astype(np.float32)  # np.resize repeats a shorter one


def babble(rows: Sequence[Utterance], n: int, sample_rate: int, k: int, speaker: str | None,
           rng: np.random.Generator) -> np.ndarray | None:
    """``k`` other utterances of other speakers than ``speaker``, each at unit power, summed: the noise of a
    room of talkers. None when no such utterance could be read."""
    out = np.zeros(n, dtype=np.float32)
    found = 0
    for _ in range(4 * k):  # a few draws may hit the speaker or an unreadable file
        if found == k or not rows:
            break
        row = rows[int(rng.integers(len(rows)))]
        if speaker is not None and row.speaker == speaker:
            continue
        try:
            seg = read_segment(row.audio, n, sample_rate, rng)
        except (KidconsoleError, RuntimeError, OSError, ValueError):
            continue  # a bad file is the training's to report when it loads it; babble takes another
        p = power(seg)
        if p > 0:
            out += seg / np.float32(np.sqrt(p))
            found += 1
    return out if found else None


# ---------- concatenation ----------

def join_groups(batch: Sequence[int], seconds: Sequence[float], chain_of, key_of, batch_seconds: float,
                max_seconds: float) -> list[list[int]]:
    """The batch's rows in groups to join, in order: a row whose concatenation fires starts a group with the
    next one or two rows (2..max_parts, drawn) of the same chain, when the join stays within
    ``max_seconds`` and the batch's padded seconds (rows x longest) within ``batch_seconds``.
    ``seconds``: each row's length as loaded (after its speed); ``chain_of(i)``, ``key_of(i)``: a row's
    Chain and its draw key."""
    groups: list[list[int]] = []
    lengths: list[float] = []
    j = 0
    while j < len(batch):
        i = batch[j]
        chain = chain_of(i)
        rng = chain.fires("concat", key_of(i))
        take = 1
        if rng is not None:
            parts = int(rng.integers(2, chain.wf.concat.max_parts + 1))
            gap = chain.wf.concat.gap_ms / 1000
            for size in range(min(parts, len(batch) - j), 1, -1):
                members = batch[j:j + size]
                if any(chain_of(m) is not chain for m in members):
                    continue
                joined = sum(seconds[j:j + size]) + gap * (size - 1)
                rows_after = len(groups) + 1 + (len(batch) - j - size)
                longest = max([joined, *lengths, *seconds[j + size:]])
                if joined <= max_seconds and rows_after * longest <= batch_seconds:
                    take = size
                    break
        groups.append(list(batch[j:j + take]))
        lengths.append(sum(seconds[j:j + take]) + (chain.wf.concat.gap_ms / 1000) * (take - 1))
        j += take
    return groups


def joined_labels(parts: Sequence[list[int]], sep: int) -> list[int]:
    """The parts' label ids in order, the word separator between two parts unless one is there already."""
    out: list[int] = []
    for labels in parts:
        if out and out[-1] != sep and labels and labels[0] != sep:
            out.append(sep)
        out += labels
    return out

