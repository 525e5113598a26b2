"""``kidconsole corpus synth``: a small synthetic corpus in the AI Hub layout.

It stands in for the real corpus in tests and in the demo: adult speakers (to
train a base model) and child speakers aged 3-10 (to adapt it), label JSON in
the English-key schema with the real traps, 16 kHz mono WAV, deterministic by
seed. What the audio is and is not: ``docs/synthetic-corpus.md``.

The audio is a parametric source-filter rendering of the phones the G2P gives
for each transcript: every phone has one consistent acoustic signature
(vowels: a pulse train shaped by 2-3 formants; fricatives: band-limited noise;
stops: closure, burst, aspiration; nasals: a low murmur), scaled by the
speaker's pitch, vocal-tract length (formants x1.2-1.5 for children) and
tempo, with additive white noise at the labelled SNR.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from kidconsole.errors import KidconsoleError
from kidconsole.phonemes import PHONES, WORD_SEP

SR = 16000
SPLIT_DIRS = {"train": "1.Training", "validation": "2.Validation", "test": "3.Test"}
_PREFIX = {"train": "T", "validation": "V", "test": "T"}   # TL_/TS_, VL_/VS_ archives
LABEL_DIR, SOURCE_DIR = "라벨링데이터", "원천데이터"
CHILD_AGES = tuple(range(3, 11))
FILLERS = ("음/", "어/")   # AI Hub filler markup: the word, then a slash
# initials shared by many speakers: the trap that speaker names are not identities
_NAMES = ("KMS", "LJH", "PSY", "KJW", "CHY", "LSA")

# ---------------------------------------------------------------- acoustics

# Vowel targets at the adult reference vocal tract: F1, F2, F3 in Hz. Chosen far
# apart (AE and E are merged in speech today; here they are kept distinct).
_V = {
    "A": (850, 1250, 2500), "AE": (650, 1800, 2450), "E": (440, 2200, 2850),
    "EO": (620, 950, 2300), "O": (400, 700, 2600), "U": (290, 1150, 2100),
    "EU": (380, 1550, 2500), "I": (260, 2400, 3100),
}
# diphthongs: (glide vowel, target vowel)
_DIPH = {
    "iA": ("I", "A"), "iAE": ("I", "AE"), "iEO": ("I", "EO"), "iE": ("I", "E"),
    "iO": ("I", "O"), "iU": ("I", "U"), "oA": ("O", "A"), "oAE": ("O", "AE"),
    "oE": ("O", "E"), "uEO": ("U", "EO"), "uE": ("U", "E"), "uI": ("U", "I"),
    "euI": ("EU", "I"),
}
_LABIAL, _ALVEOLAR, _VELAR, _PALATAL = (400, 1500), (3200, 6000), (1500, 3000), (2500, 5000)


def _voiced(ms, formants, gain=1.0):
    return ("v", ms, tuple(formants), gain)


def _noise(ms, band, gain):
    return ("n", ms, tuple(band), gain)


def _sil(ms):
    return ("s", ms, (), 0.0)


def _stop(place, kind):
    """Korean three-way stops: lax (short closure, weak aspiration), tense
    (long closure, strong burst, none), aspirated (long aspiration)."""
    if kind == "lax":
        return [_sil(35), _noise(10, place, 0.5), _noise(15, (500, 5000), 0.12)]
    if kind == "tense":
        return [_sil(70), _noise(8, place, 1.0)]
    return [_sil(40), _noise(10, place, 0.7), _noise(70, (500, 5000), 0.3)]


def _affricate(kind):
    if kind == "lax":
        return [_sil(30), _noise(50, _PALATAL, 0.45)]
    if kind == "tense":
        return [_sil(60), _noise(40, (2800, 5600), 0.9)]
    return [_sil(35), _noise(50, _PALATAL, 0.6), _noise(60, (500, 5000), 0.3)]


def phone_pieces() -> dict[str, list[tuple]]:
    """Each phone's signature as a list of pieces (kind, ms, params, gain)."""
    p: dict[str, list[tuple]] = {}
    for v, f in _V.items():
        p[v] = [_voiced(110, f)]
    for d, (g, t) in _DIPH.items():
        mid = tuple((a + b) / 2 for a, b in zip(_V[g], _V[t]))
        p[d] = [_voiced(45, _V[g]), _voiced(25, mid), _voiced(75, _V[t])]
    for name, place in (("G", _VELAR), ("D", _ALVEOLAR), ("B", _LABIAL)):
        p[name] = _stop(place, "lax")
    for name, place in (("GG", _VELAR), ("DD", _ALVEOLAR), ("BB", _LABIAL)):
        p[name] = _stop(place, "tense")
    for name, place in (("Kh", _VELAR), ("Th", _ALVEOLAR), ("Ph", _LABIAL)):
        p[name] = _stop(place, "aspirated")
    p["J"], p["JJ"], p["Ch"] = _affricate("lax"), _affricate("tense"), _affricate("aspirated")
    p["S"] = [_noise(25, (500, 5000), 0.1), _noise(80, (3500, 7000), 0.45)]
    p["SS"] = [_noise(130, (4600, 7800), 0.9)]
    p["H"] = [_noise(70, (800, 3500), 0.3)]
    p["N"] = [_voiced(70, (250, 1700, 2600), 0.35)]
    p["M"] = [_voiced(70, (250, 1050, 2300), 0.35)]
    p["NG"] = [_voiced(85, (250, 2300, 3000), 0.35)]
    p["R"] = [_voiced(45, (350, 1400, 1800), 0.45)]
    p["L"] = [_voiced(80, (360, 1200, 2900), 0.5)]
    p["k"] = [_voiced(30, (300, 2000, 2300), 0.5), _sil(55)]
    p["t"] = [_voiced(30, (300, 1700, 2800), 0.5), _sil(55)]
    p["p"] = [_voiced(30, (300, 700, 2200), 0.5), _sil(55)]
    p[WORD_SEP] = [_sil(80)]
    missing = set(PHONES) - set(p)
    assert not missing, f"phones without a signature: {missing}"
    return p


_PIECES = phone_pieces()
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])
_FORMANT_AMPS = np.array([1.0, 0.7, 0.35])
_XFADE = 64  # samples (4 ms) of overlap between pieces, so joins do not click


@dataclass(frozen=True)
class Voice:
    """One speaker's rendering parameters."""
    f0: float            # Hz
    vtl: float           # formant scale: 1.0 adult male reference, children 1.2-1.5
    tempo: float         # duration scale (>1 slower)
    jitter: float        # sd of the log duration of each phone (irregular tempo)
    formant_jitter: float  # sd of per-phone formant scale (sloppier articulation)
    hesitation: float    # chance of a pause at each word boundary
    filler: float        # chance of a filler word ("음/") per utterance


def _envelope(freqs, formants, vtl):
    f = np.asarray(formants)[:, None] * vtl
    b = _BANDWIDTHS[: len(formants), None] * np.sqrt(vtl)
    res = (_FORMANT_AMPS[: len(formants), None] * b**2 / ((freqs[None, :] - f) ** 2 + b**2)).sum(0)
    return res / (1.0 + freqs / 1500.0)  # glottal spectral tilt


def _band(freqs, lo, hi):
    edge = 250.0
    return np.clip(np.minimum((freqs - lo) / edge + 0.5, (hi - freqs) / edge + 0.5), 0, 1)


@lru_cache(maxsize=None)
def _freqs(nfft: int) -> np.ndarray:
    return np.fft.rfftfreq(nfft, 1 / SR)


@lru_cache(maxsize=None)
def _ramp(n: int) -> np.ndarray:
    return np.sin(np.linspace(0, np.pi / 2, n)) ** 2


def _render_piece(kind, n, params, gain, voice, f0, fscale, rng):
    if kind == "s" or n <= 0:
        return np.zeros(max(n, 0))
    # room for the formant ringing (a few ms) so the circular convolution does not wrap
    nfft = 1 << int(np.ceil(np.log2(n + 256)))
    freqs = _freqs(nfft)
    if kind == "v":
        src = np.zeros(nfft)
        period = SR / f0
        src[(rng.uniform(0, period) + np.arange(0, n, period)).astype(int)] = 1.0
        spec = np.fft.rfft(src) * _envelope(freqs, params, fscale)
        out = np.fft.irfft(spec, nfft)[:n] * np.sqrt(period) * 0.6
    else:
        lo, hi = params
        scale = min(fscale, 7800 / hi)  # a shorter tract raises noise bands too, below Nyquist
        spec = (rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs)))
        spec *= _band(freqs, lo * scale, hi * scale)
        out = np.fft.irfft(spec, nfft)[:n]
        out *= 0.35 / (np.sqrt(np.mean(out**2)) + 1e-9)
    ramp = min(_XFADE, n // 2)
    if ramp:
        w = _ramp(ramp)
        out[:ramp] *= w
        out[-ramp:] *= w[::-1]
    return out * gain


def render(phones: list[str], voice: Voice, rng: np.random.Generator,
           spans: list[tuple[str, int, int]] | None = None) -> np.ndarray:
    """The waveform (float64, unnormalised) of a phone sequence said by one voice.

    A phone ``"_"`` is a hesitation pause (not in the labels). ``spans``, when given, receives each phone's
    ``(phone, first sample, end sample)``: from the middle of the cross-fade into it to the middle of the one
    out of it (the truth forced alignment is measured against).
    """
    pieces = []
    n_ph = max(len(phones), 1)
    pos = 0
    for i, ph in enumerate(phones):
        stretch = voice.tempo * float(np.exp(rng.normal(0, voice.jitter)))
        fscale = voice.vtl * float(np.exp(rng.normal(0, voice.formant_jitter)))
        f0 = voice.f0 * (1.05 - 0.12 * i / n_ph) * float(np.exp(rng.normal(0, 0.03)))
        spec = [_sil(rng.uniform(200, 450) / voice.tempo)] if ph == "_" else _PIECES[ph]
        start = pos
        for kind, ms, params, gain in spec:
            n = int(ms * stretch * SR / 1000) + _XFADE
            pieces.append(_render_piece(kind, n, params, gain, voice, f0, fscale, rng))
            pos += n - _XFADE
        if spans is not None:
            spans.append((ph, start + (_XFADE // 2 if i else 0), pos + _XFADE // 2))
    total = sum(len(p) - _XFADE for p in pieces) + _XFADE
    out = np.zeros(max(total, 1))
    pos = 0
    for p in pieces:
        out[pos:pos + len(p)] += p
        pos += len(p) - _XFADE
    return out


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` below the power of the speech (its voiced/noisy parts)."""
    active = x[np.abs(x) > 1e-4]
    power = float(np.mean(active**2)) if active.size else 1e-6
    return x + rng.standard_normal(len(x)) * np.sqrt(power / 10 ** (snr_db / 10))


# ---------------------------------------------------------------- speakers

@dataclass
class Speaker:
    serial: int
    name: str
    gender: str   # "M" / "F"
    age: int
    split: str
    voice: Voice

    @property
    def child(self) -> bool:
        return self.age < 18


def _adult_voice(rng, gender) -> Voice:
    male = gender == "M"
    return Voice(
        f0=rng.uniform(95, 140) if male else rng.uniform(180, 235),
        vtl=rng.uniform(0.95, 1.04) if male else rng.uniform(1.08, 1.17),
        tempo=rng.uniform(0.9, 1.1), jitter=0.07, formant_jitter=0.02,
        hesitation=0.02, filler=0.0)


def _child_voice(rng, age) -> Voice:
    young = (10 - age) / 7  # 1 at age 3, 0 at age 10
    return Voice(
        f0=rng.uniform(245, 275) + 70 * young,
        vtl=rng.uniform(1.22, 1.28) + 0.22 * young,
        tempo=rng.uniform(1.1, 1.2) + 0.2 * young, jitter=0.18 + 0.1 * young,
        formant_jitter=0.04 + 0.03 * young, hesitation=0.12 + 0.1 * young, filler=0.15 + 0.15 * young)


def _assign_splits(n: int, rng) -> list[str]:
    """Speaker-level splits, about 70/15/15; validation and test get one each from 3 speakers."""
    n_val = max(1, round(0.15 * n)) if n >= 3 else 0
    n_test = max(1, round(0.15 * n)) if n >= 3 else 0
    splits = ["validation"] * n_val + ["test"] * n_test
    splits += ["train"] * (n - len(splits))
    rng.shuffle(splits)
    return splits


def make_speakers(seed: int, adults: int, children_per_age: int) -> list[Speaker]:
    rng = np.random.default_rng([seed, 1])
    speakers: list[Speaker] = []
    genders = ["M", "F"] * ((adults + 1) // 2)
    adult_splits = _assign_splits(adults, rng)
    for i in range(adults):
        speakers.append(Speaker(0, "", genders[i], int(rng.integers(20, 50)), adult_splits[i],
                                _adult_voice(rng, genders[i])))
    kids = [(age, k) for age in CHILD_AGES for k in range(children_per_age)]
    kid_splits = _assign_splits(len(kids), rng)
    for (age, k), split in zip(kids, kid_splits):
        g = "M" if (age + k) % 2 else "F"
        speakers.append(Speaker(0, "", g, age, split, _child_voice(rng, age)))
    for serial, spk in enumerate(speakers, 1):
        spk.serial = 1000 + serial
        spk.name = _NAMES[int(rng.integers(len(_NAMES)))]
    return speakers


# ---------------------------------------------------------------- corpus

def load_sentences(path: str | Path | None = None) -> list[str]:
    path = Path(path) if path else Path(__file__).with_name("sentences.txt")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise KidconsoleError(f"cannot read sentences {path}: {e.strerror}") from e
    out = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not out:
        raise KidconsoleError(f"{path}: no sentences")
    return out


@dataclass
class SynthSummary:
    out_dir: Path
    utterances: int = 0
    adults: int = 0
    children: int = 0
    hours: float = 0.0
    seconds: float = 0.0
    by_split: dict = field(default_factory=dict)
    bad_files: dict = field(default_factory=dict)   # label or audio path -> the reason the index gives
    skipped_sentences: list = field(default_factory=list)  # sentences the G2P could not convert
    planted: dict = field(default_factory=dict)     # manifest id -> the label error planted in it (ERROR_KINDS)


def _snr_label(rng, snr: float):
    """The SNR as labels write it: numbers, strings with units or signs, N/A, or absent."""
    r = rng.random()
    v = int(round(snr))
    if r < 0.3:
        return f"{v}dB"
    if r < 0.5:
        return f"+{v}"
    if r < 0.65:
        return str(v)
    if r < 0.8:
        return v
    if r < 0.92:
        return "N/A"
    return None  # key left out


def _label_json(spk: Speaker, file_name: str, text: str, duration: float, snr, rng,
                sample_rate: int = SR) -> dict:
    as_str = rng.random() < 0.5  # numbers come as strings in some files
    wav = {"SamplingRate": str(sample_rate) if as_str else sample_rate,
           "NumberOfChannel": "1" if as_str else 1, "NumberOfBit": 16}
    if snr is not None:
        wav["SignalToNoiseRatio"] = snr
    return {
        "Basic": {"NumberOfSpeaker": f"{spk.serial:05d}", "DataCategory": "ReadSpeech",
                  "Language": "KOR", "RecordingDate": "2021-08-17", "Version": "1.0"},
        "Speaker": {"SpeakerName": spk.name, "Gender": "Male" if spk.gender == "M" else "Female",
                    "Age": str(spk.age) if as_str else spk.age,
                    "AgeGroup": "성인" if not spk.child else ("유아" if spk.age < 7 else "아동"),
                    "SchoolYear": "N/A" if spk.age < 8 or not spk.child else f"초{spk.age - 7}",
                    "Region": "Seoul", "Dialect": "Standard"},
        "Environment": {"RecordingEnviron": "Home", "NoiseEnviron": "Normal",
                        "RecordingDevices": "Smartphone"},
        "File": {"FileName": file_name, "FileLength": f"{duration:.3f}" if as_str else round(duration, 3),
                 "FileFormat": "wav", "NumberOfRepeat": "1"},
        "Wav": wav,
        "Miscellaneous_Info": {"SpeechStart": "0.2", "SpeechEnd": f"{max(duration - 0.2, 0):.2f}"},
        "Transcription": {"LabelText": text, "ErrorTagged": "N", "GrammaticalError": "N"},
        "Other": {"QualityStatus": "Good"},
    }


class _Writer:
    """Writes label and audio files into folders, or into TL_/TS_ zip archives."""

    def __init__(self, out: Path, zipped: bool):
        self.out, self.zipped = out, zipped
        self._zips: dict[Path, zipfile.ZipFile] = {}

    def _place(self, split: str, group: str, side: str) -> Path:
        kind = "L" if side == "label" else "S"
        return (self.out / SPLIT_DIRS[split] / (LABEL_DIR if side == "label" else SOURCE_DIR)
                / f"{_PREFIX[split]}{kind}_{group}")

    def write(self, split, group, side, rel: str, data: bytes) -> str:
        base = self._place(split, group, side)
        if self.zipped:
            zpath = base.with_suffix(".zip")
            zf = self._zips.get(zpath)
            if zf is None:
                zpath.parent.mkdir(parents=True, exist_ok=True)
                zf = self._zips[zpath] = zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED)
            zf.writestr(rel, data)
            return f"{zpath}::{rel}"
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    def close(self):
        for zf in self._zips.values():
            zf.close()


# planted label errors (synthesize(label_errors=...)): the label names another utterance's sentence, only the
# first half of the words said, or all of them while the audio lost its first SHIFT_SHARE of speech
WRONG_SENTENCE, TRUNCATED, SHIFTED = "wrong_sentence", "truncated_transcript", "shifted_audio"
ERROR_KINDS = (WRONG_SENTENCE, TRUNCATED, SHIFTED)
SHIFT_SHARE = 0.4
PLANTED_FILE = "planted_errors.jsonl"   # at the corpus root: {id, kind, label, said} per planted error
PHONE_TIMES_FILE = "phone_times.jsonl"  # at the corpus root: {id, phones: [[phone, start s, end s], ...]}
# children's typical substitutions (stopping of fricatives, fronting of velars): synthesize(mispronounce=...)
# says one such phone of a child's utterance as its substitute while the label keeps the canonical phone
SUBSTITUTIONS = {"S": "D", "SS": "DD", "G": "D", "GG": "DD", "Kh": "Th"}
MISPRONOUNCED_FILE = "mispronounced.jsonl"  # at the corpus root: {id, index, canonical, said} per utterance


def manifest_id(split: str, stem: str) -> str:
    """The id the corpus index gives an utterance (kidconsole.corpus.index)."""
    return f"{split}/{stem}"


def _plant_errors(plans: list[list], share: float, seed: int) -> None:
    """Turns ``share`` of the training split's plans ``[spk, n, said, label, kind]`` into label errors,
    cycling through ERROR_KINDS in a seeded order (a one-word sentence cannot be truncated: it gets another
    sentence instead)."""
    rng = np.random.default_rng([seed, 11])
    train = [i for i, p in enumerate(plans) if p[0].split == "train"]
    picked = rng.permutation(len(train))[:int(round(share * len(train)))]
    for k, i in enumerate(picked):
        plan = plans[train[int(i)]]
        kind = ERROR_KINDS[k % len(ERROR_KINDS)]
        words = plan[2].split()
        if kind == TRUNCATED and len(words) < 2:
            kind = WRONG_SENTENCE
        if kind == WRONG_SENTENCE:
            others = [p[2] for p in plans if p[2] != plan[2]]
            plan[3] = others[int(rng.integers(len(others)))]
        elif kind == TRUNCATED:
            plan[3] = " ".join(words[:len(words) // 2])
        plan[4] = kind


def _wav_bytes(x: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def synthesize(out_dir: str | Path, *, seed: int = 0, adults: int = 8, children_per_age: int = 2,
               utterances_per_speaker: int = 30, bad_files: bool = False, zipped: bool = False,
               sentences: list[str] | None = None, g2p_cache=None, label_errors: float = 0.0,
               phone_times: bool = False, mispronounce: float = 0.0) -> SynthSummary:
    """Write a synthetic corpus under ``out_dir``; the same seed gives the same files.

    ``label_errors``: the share of the training split's utterances given a wrong label (ERROR_KINDS), listed
    in ``PLANTED_FILE`` at the root; ``mispronounce``: the share of children's utterances with one phone said
    as a child's typical substitute (SUBSTITUTIONS) under the canonical label, listed in
    ``MISPRONOUNCED_FILE``; ``phone_times``: each utterance's phone boundaries as rendered, in
    ``PHONE_TIMES_FILE``. Neither changes the other utterances' files."""
    if not 0.0 <= label_errors <= 1.0:
        raise KidconsoleError(f"label_errors {label_errors}: expected a share between 0 and 1")
    from kidconsole.g2p import convert_many

    t0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise KidconsoleError(f"{out} is not empty: synth writes a fresh corpus")
    sentences = sentences or load_sentences()
    speakers = make_speakers(seed, adults, children_per_age)
    summary = SynthSummary(out, adults=sum(not s.child for s in speakers),
                           children=sum(s.child for s in speakers))

    # transcripts first (the phones of each come from the G2P, as the index will derive them)
    plans = []
    for spk in speakers:
        for n in range(1, utterances_per_speaker + 1):
            rng = np.random.default_rng([seed, spk.serial, n])
            k = 1 if rng.random() < 0.6 else int(rng.integers(2, 5))
            words = " ".join(sentences[int(i)] for i in rng.integers(len(sentences), size=k)).split()
            if rng.random() < spk.voice.filler:
                words.insert(int(rng.integers(len(words) + 1)), FILLERS[int(rng.integers(2))])
            plans.append([spk, n, " ".join(words), " ".join(words), None])  # said, labelled, planted error
    if label_errors:
        _plant_errors(plans, label_errors, seed)
    texts = list(dict.fromkeys(t for p in plans for t in p[2:4]))
    results = dict(zip(texts, convert_many(texts, cache=g2p_cache, progress=False)))
    summary.skipped_sentences = sorted(t for t, r in results.items() if r.phones is None)

    writer = _Writer(out, zipped)
    seconds = 0.0
    by_split: dict[str, int] = {}
    planted, times, substituted = [], [], []
    try:
        for spk, n, said, text, error in plans:
            phones = results[said].phones
            if phones is None or results[text].phones is None:
                continue
            phones = phones.split()
            swap = None
            if mispronounce and spk.child and not error:
                mis = np.random.default_rng([seed, spk.serial, n, 13])
                where = [k for k, ph in enumerate(phones) if ph in SUBSTITUTIONS]
                if where and mis.random() < mispronounce:
                    k = where[int(mis.integers(len(where)))]
                    swap = {"index": k, "canonical": phones[k], "said": SUBSTITUTIONS[phones[k]]}
                    phones = phones[:k] + [SUBSTITUTIONS[phones[k]]] + phones[k + 1:]
            rng = np.random.default_rng([seed, spk.serial, n, 7])
            seq = []
            for ph in phones:
                if ph == WORD_SEP and rng.random() < spk.voice.hesitation:
                    seq.append("_")
                seq.append(ph)
            spans: list[tuple[str, int, int]] = []
            x = render(seq, spk.voice, rng, spans)
            cut = int(SHIFT_SHARE * len(x)) if error == SHIFTED else 0
            lead = int(rng.uniform(0.1, 0.3) * SR)
            x = np.concatenate([np.zeros(lead), x[cut:], np.zeros(int(rng.uniform(0.1, 0.3) * SR))])
            x = x[: 12 * SR]  # utterances stay within 12 s
            snr = float(rng.uniform(25, 40) if not spk.child else rng.uniform(10, 35))
            x = add_noise(x, snr, rng)
            x *= 10 ** (rng.uniform(-6, 0) / 20) * 0.7 / (np.max(np.abs(x)) + 1e-9)
            group = "02" if spk.child else "01"
            stem = f"S{spk.serial:05d}_{n:04d}"
            duration = len(x) / SR
            writer.write(spk.split, group, "audio", f"S{spk.serial:05d}/{stem}.wav", _wav_bytes(x))
            label = _label_json(spk, f"{stem}.wav", text, duration, _snr_label(rng, snr), rng)
            writer.write(spk.split, group, "label", f"S{spk.serial:05d}/{stem}.json",
                         json.dumps(label, ensure_ascii=False, indent=1).encode())
            uid = manifest_id(spk.split, stem)
            if swap:
                substituted.append({"id": uid, **swap})
            if error:
                summary.planted[uid] = error
                planted.append({"id": uid, "kind": error, "label": text, "said": said})
            if phone_times:
                at = lambda sample: round((sample - cut + lead) / SR, 4)  # noqa: E731 (the audio's time)
                times.append({"id": uid, "phones": [[ph, at(a), at(b)] for ph, a, b in spans
                                                    if ph != "_" and a >= cut and b - cut + lead <= len(x)]})
            seconds += duration
            by_split[spk.split] = by_split.get(spk.split, 0) + 1
            summary.utterances += 1
        if bad_files:
            summary.bad_files = _write_bad_files(writer, speakers, seed, sentences[:5])
    finally:
        writer.close()
    for name, lines in ((PLANTED_FILE, planted if label_errors else None),
                        (PHONE_TIMES_FILE, times if phone_times else None),
                        (MISPRONOUNCED_FILE, substituted if mispronounce else None)):
        if lines is not None:
            (out / name).write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines), encoding="utf-8")
    summary.hours = round(seconds / 3600, 4)
    summary.by_split = by_split
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary


def _write_bad_files(writer: _Writer, speakers: list[Speaker], seed: int, texts: list[str]) -> dict:
    """One label of each bad kind, in the training split; returns location -> expected reason."""
    rng = np.random.default_rng([seed, 99])
    spk = next(s for s in speakers if s.split == "train")
    said = ["A", "N", "I", WORD_SEP, "O", "M", "A", WORD_SEP, "A", "N", "I"]
    tone = add_noise(np.pad(render(said, spk.voice, rng), SR // 5), 30, rng) * 0.3
    bad = {}

    def case(kind, reason, *, wav=b"", wav_sr=SR, label_text=None, json_bytes=None, write_wav=True,
             quality="Good"):
        stem = f"BAD_{kind}"
        rel = f"S{spk.serial:05d}/{stem}"
        if write_wav:
            writer.write("train", "01", "audio", rel + ".wav", wav or _wav_bytes(tone))
        if json_bytes is None:
            lab = _label_json(spk, stem + ".wav", texts[0] if label_text is None else label_text,
                              len(tone) / SR, "30dB", rng, sample_rate=wav_sr)
            lab["Other"]["QualityStatus"] = quality
            json_bytes = json.dumps(lab, ensure_ascii=False).encode()
        bad[writer.write("train", "01", "label", rel + ".json", json_bytes)] = reason

    case("corrupt_wav", "bad_audio", wav=bytes(rng.integers(0, 256, 3000, dtype=np.uint8)))
    good = _label_json(spk, "BAD_truncated_json.wav", texts[1], 1.0, "30dB", rng)
    case("truncated_json", "bad_json", json_bytes=json.dumps(good, ensure_ascii=False).encode()[:120])
    case("missing_audio", "missing_audio", write_wav=False)
    case("empty_transcript", "empty_text", label_text="")
    low = tone[::2]  # 8 kHz
    case("wrong_sample_rate", "sample_rate", wav=_wav_bytes(low, 8000), wav_sr=8000)
    case("bad_quality", "quality", quality="Bad")
    case("too_short", "too_short", wav=_wav_bytes(tone[: int(0.2 * SR)]))
    return bad
