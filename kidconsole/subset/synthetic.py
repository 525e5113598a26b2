"""A synthetic corpus manifest (metadata only) shaped like AI Hub's children's speech.

For the subset builder's tests and benchmark: realistic split sizes, speaker
counts (a few hundred utterances per child, spread lognormally), ages per
speaker, SNR per recording setup plus per-utterance noise, and a lognormal
duration spread around the corpus's ~6.3 s mean. The audio paths point nowhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kidconsole.phonemes import PHONES, WORD_SEP

# AI Hub children's speech: utterances per source split
AIHUB_SPLIT_SIZES = {"train": 1_771_800, "validation": 114_539, "test": 100_660}
UTTERANCES_PER_SPEAKER = 600  # mean; ~3,300 children over the whole corpus
# ages 3..12 (children), a few adults given as a range, a few unknown
_AGES = np.arange(3, 13)
_AGE_WEIGHTS = np.array([6, 12, 14, 14, 13, 12, 10, 8, 5, 3], dtype=float)


def _sentences(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        words = rng.integers(2, 7)
        text = " ".join("".join(chr(0xAC00 + int(c)) for c in rng.integers(0, 11172, rng.integers(1, 5)))
                        for _ in range(words))
        phones = f" {WORD_SEP} ".join(" ".join(rng.choice(PHONES, rng.integers(2, 9))) for _ in range(words))
        out.append((json.dumps(text, ensure_ascii=False), json.dumps(phones)))
    return out


def write_synthetic_manifest(path: str | Path, n_utterances: int, *, seed: int = 0,
                             utterances_per_speaker: int = UTTERANCES_PER_SPEAKER,
                             split_sizes: dict[str, int] | None = None,
                             adult_share: float = 0.01, unknown_age_share: float = 0.01,
                             unknown_snr_share: float = 0.03) -> Path:
    """Write ``n_utterances`` rows; split sizes follow AI Hub's proportions unless given."""
    rng = np.random.default_rng(seed)
    sizes = split_sizes or AIHUB_SPLIT_SIZES
    weights = np.array(list(sizes.values()), dtype=float)
    counts = np.floor(weights / weights.sum() * n_utterances).astype(int)
    counts[0] += n_utterances - counts.sum()
    sentences = _sentences(rng, 256)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spk_serial = 0
    with path.open("w", encoding="utf-8") as fh:
        for split, n_split in zip(sizes, counts):
            n_spk = max(1, round(n_split / utterances_per_speaker))
            per = rng.lognormal(0, 0.5, n_spk)
            n_per = np.floor(per / per.sum() * n_split).astype(int)
            n_per[: n_split - n_per.sum()] += 1
            kind = rng.random(n_spk)
            age = rng.choice(_AGES, n_spk, p=_AGE_WEIGHTS / _AGE_WEIGHTS.sum()).astype(float)
            snr_base = rng.normal(24, 8, n_spk)
            no_snr = rng.random(n_spk) < unknown_snr_share
            dur_scale = rng.lognormal(0, 0.2, n_spk) * np.where(age < 6, 0.85, 1.0)
            spk = np.repeat(np.arange(n_spk), n_per)
            m = len(spk)
            dur = np.clip(rng.lognormal(np.log(5.4), 0.55, m) * dur_scale[spk], 0.4, 30.0)
            snr = snr_base[spk] + rng.normal(0, 4, m)
            snr_missing = no_snr[spk] | (rng.random(m) < 0.01)
            pick = rng.integers(0, len(sentences), m)
            for j in range(m):
                s = spk[j]
                k = kind[s]
                if k < unknown_age_share:
                    age_f = '"age":null,"age_range":null'
                elif k < unknown_age_share + adult_share:
                    age_f = '"age":null,"age_range":[20,29]'
                else:
                    age_f = f'"age":{age[s]:.0f},"age_range":null'
                snr_f = "null" if snr_missing[j] else f"{snr[j]:.1f}"
                text, phones = sentences[pick[j]]
                uid = f"{split}/S{spk_serial + s:05d}/{j:07d}"
                fh.write(
                    f'{{"id":"{uid}","audio":"/data/aihub/{split}.zip::{uid}.wav","duration":{dur[j]:.3f},'
                    f'"sample_rate":16000,"speaker":"spk{spk_serial + s:05d}","split":"{split}","text":{text},'
                    f'"phones":{phones},"channels":1,{age_f},"gender":"{"MF"[s % 2]}","snr":{snr_f},'
                    f'"snr_estimated":false,"quality":"Good","label":"/data/aihub/{split}_labels.zip::{uid}.json",'
                    f'"extra":{{}}}}\n')
            spk_serial += n_spk
    return path
