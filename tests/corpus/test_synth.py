import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kidconsole.corpus.synth import (CHILD_AGES, _adult_voice, _child_voice, make_speakers, phone_pieces,
                                     render, synthesize)
from kidconsole.phonemes import PHONES

SMALL = dict(adults=2, children_per_age=1, utterances_per_speaker=3)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_other_files(tmp_path, synth_folders):
    again = synthesize(tmp_path / "a", seed=3, bad_files=True, **SMALL)
    assert _digest(again.out_dir) == _digest(synth_folders.out_dir)
    other = synthesize(tmp_path / "b", seed=4, **SMALL)
    assert _digest(other.out_dir) != _digest(again.out_dir)


def test_refuses_to_write_into_a_non_empty_folder(tmp_path):
    from kidconsole.errors import KidconsoleError

    (tmp_path / "x").write_text("keep me")
    with pytest.raises(KidconsoleError, match="not empty"):
        synthesize(tmp_path, **SMALL)


def _labels(root: Path):
    return [json.loads(p.read_text(encoding="utf-8")) for p in root.rglob("*.json") if "BAD_" not in p.name]


def test_layout_speakers_and_audio(synth_folders):
    root = synth_folders.out_dir
    assert {p.name for p in root.iterdir()} == {"1.Training", "2.Validation", "3.Test"}
    assert (root / "1.Training" / "라벨링데이터" / "TL_02").is_dir()
    assert (root / "1.Training" / "원천데이터" / "TS_02").is_dir()
    labels = _labels(root)
    assert len(labels) == synth_folders.utterances == 30
    ages = Counter(int(lab["Speaker"]["Age"]) for lab in labels)
    assert set(CHILD_AGES) <= set(ages) and any(a >= 18 for a in ages)
    for wav in list(root.rglob("S*.wav"))[:40]:
        info = sf.info(wav)
        assert info.samplerate == 16000 and info.channels == 1 and 0.5 <= info.duration <= 12


def test_labels_carry_the_real_traps(tmp_path):
    s = synthesize(tmp_path / "c", seed=1, adults=6, children_per_age=2, utterances_per_speaker=6)
    labels = _labels(s.out_dir)
    by_name = {}
    for lab in labels:
        by_name.setdefault(lab["Speaker"]["SpeakerName"], set()).add(lab["Basic"]["NumberOfSpeaker"])
    assert any(len(serials) > 1 for serials in by_name.values())  # initials shared by speakers
    snrs = [lab["Wav"].get("SignalToNoiseRatio", "<absent>") for lab in labels]
    kinds = {("absent" if v == "<absent>" else "na" if v == "N/A" else "db" if str(v).endswith("dB")
              else "plus" if str(v).startswith("+") else type(v).__name__) for v in snrs}
    assert kinds == {"absent", "na", "db", "plus", "str", "int"}
    assert {type(lab["Speaker"]["Age"]) for lab in labels} == {str, int}
    assert any("음/" in lab["Transcription"]["LabelText"] or "어/" in lab["Transcription"]["LabelText"]
               for lab in labels)  # child fillers, in AI Hub markup


def test_speakers_split_apart_with_children_in_every_split():
    spk = make_speakers(0, 8, 2)
    assert len(spk) == 8 + 16 and len({s.serial for s in spk}) == len(spk)
    for split in ("train", "validation", "test"):
        assert any(s.child for s in spk if s.split == split)
        assert any(not s.child for s in spk if s.split == split)


def test_every_phone_has_a_signature():
    assert set(phone_pieces()) == set(PHONES) | {"|"}


def _features(x):
    n = 256
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (0, n)), n)[::128]
    bands = np.log((np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2)[:, :128]
                   .reshape(len(frames), 16, 8).sum(2) + 1e-8)
    k = len(bands)
    thirds = [bands[: max(k // 3, 1)], bands[k // 3: max(2 * k // 3, k // 3 + 1)], bands[2 * k // 3:]]
    return np.concatenate([t.mean(0) for t in thirds] + [[5 * np.log(len(x))]])


def test_phones_are_told_apart_across_adult_voices_and_children_are_harder():
    """A nearest-centroid classifier fitted on five adult voices recognises the phones
    of an unseen adult voice well, and those of children clearly worse."""
    rng = np.random.default_rng(0)
    adults = [_adult_voice(rng, g) for g in "MFMFMF"]
    kids = [_child_voice(rng, a) for a in (3, 6, 9)]

    def data(voices):
        X = [_features(render([p], v, rng)) for v in voices for _ in range(2) for p in PHONES]
        return np.array(X), np.tile(np.arange(len(PHONES)), len(voices) * 2)

    (xa, ya), (xt, yt), (xk, yk) = data(adults[:5]), data(adults[5:]), data(kids)
    centroids = np.array([xa[ya == i].mean(0) for i in range(len(PHONES))])
    scale = xa.std(0) + 1e-3

    def accuracy(x, y):
        return float(((((x[:, None] - centroids[None]) / scale) ** 2).sum(2).argmin(1) == y).mean())

    adult, child = accuracy(xt, yt), accuracy(xk, yk)
    assert adult >= 0.75
    assert child <= adult - 0.2
