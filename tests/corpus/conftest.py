"""Fixtures of the corpus tests: label builders for both schemas, small synthetic corpora."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def g2p_cache(tmp_path_factory):
    """One G2P cache for the session, never the user's own."""
    import os

    path = tmp_path_factory.mktemp("g2p") / "g2p.sqlite"
    old = os.environ.get("KIDCONSOLE_G2P_CACHE")
    os.environ["KIDCONSOLE_G2P_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("KIDCONSOLE_G2P_CACHE", None)
    else:
        os.environ["KIDCONSOLE_G2P_CACHE"] = old


EN_LABEL = {
    "Basic": {"NumberOfSpeaker": "0012", "DataCategory": "ReadSpeech", "Language": "KOR",
              "RecordingDate": "2021-08-17", "Version": "1.0"},
    "Speaker": {"SpeakerName": "KMS", "Gender": "Female", "Age": "7", "AgeGroup": "아동",
                "SchoolYear": "N/A", "Region": "Seoul", "Dialect": "Standard"},
    "Environment": {"RecordingEnviron": "Home", "NoiseEnviron": "Normal", "RecordingDevices": "Phone"},
    "File": {"FileName": "C0012_0001.wav", "FileLength": "2.5", "FileFormat": "wav", "NumberOfRepeat": "1"},
    "Wav": {"SamplingRate": "16000", "NumberOfChannel": 1, "NumberOfBit": 16, "SignalToNoiseRatio": "25dB"},
    "Miscellaneous_Info": {"SpeechStart": "0.2", "SpeechEnd": "2.3"},
    "Transcription": {"LabelText": "손을 잡고", "ErrorTagged": "N", "GrammaticalError": "N"},
    "Other": {"QualityStatus": "Good"},
}

# as found in public tools reading another AI Hub speech set
KO_LABEL = {
    "기본정보": {"Language": "KOR", "NumberOfSpeaker": "6030", "DataCategory": "ReadSpeech"},
    "음성정보": {"SamplingRate": "16000", "NumberOfBit": "16", "NumberOfChannel": "1",
             "SignalToNoiseRatio": "N/A"},
    "전사정보": {"OrgLabelText": "몇 리터로 드릴까요?", "TransLabelText": "몇 리터로 드릴까요?",
             "RefinedLabelText": ""},
    "화자정보": {"SpeakerName": "KJW", "Gender": "Male", "Age": "10~19", "Region": "Seoul"},
    "환경정보": {"RecordingEnviron": "RecordingBooth", "NoiseEnviron": "Soundproof"},
    "파일정보": {"FileCategory": "Audio", "FileName": "6030_G1A1E7_KJW_000001.wav",
             "DirectoryPath": "/6030_G1A1E7_KJW", "FileLength": 1.88, "FileFormat": "WAV"},
}


@pytest.fixture
def en_label():
    return copy.deepcopy(EN_LABEL)


@pytest.fixture
def ko_label():
    return copy.deepcopy(KO_LABEL)


def wav_bytes(seconds: float = 1.0, sr: int = 16000, channels: int = 1) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_pair(label_root: Path, audio_root: Path, rel: str, label: dict | bytes, audio: bytes | None):
    """A label JSON and its WAV at mirrored places, as folders or zips (a path ending in .zip)."""
    data = label if isinstance(label, bytes) else json.dumps(label, ensure_ascii=False).encode()
    for root, name, payload in ((label_root, rel + ".json", data), (audio_root, rel + ".wav", audio)):
        if payload is None:
            continue
        if root.suffix == ".zip":
            root.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(root, "a") as zf:
                zf.writestr(name, payload)
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(payload)


SMALL = dict(adults=2, children_per_age=1, utterances_per_speaker=3)


@pytest.fixture(scope="session")
def synth_folders(tmp_path_factory):
    from kidconsole.corpus.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "corpus"
    return synthesize(out, seed=3, bad_files=True, **SMALL)


@pytest.fixture(scope="session")
def synth_zipped(tmp_path_factory):
    from kidconsole.corpus.synth import synthesize

    out = tmp_path_factory.mktemp("synthzip") / "corpus"
    return synthesize(out, seed=3, bad_files=True, zipped=True, **SMALL)


@pytest.fixture
def make_wav():
    return wav_bytes


@pytest.fixture
def put_pair():
    return write_pair
