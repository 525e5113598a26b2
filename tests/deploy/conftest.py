"""Fixtures: a finished LoRA run of the tiny model on the tone corpus (real training), audio of several
formats, rates and channel counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from kidconsole.runs.launch import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tones(tmp_path_factory) -> dict[str, Path]:
    from trainers.tiny import tone_corpus

    return tone_corpus(tmp_path_factory.mktemp("tones"), n_train=24, n_valid=6, n_test=8)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tones, tiny_run_config, train_to_end) -> Path:
    """A finished run (trainers.train, LoRA on a tiny base): config.yaml, predictions, exports/adapter and merged."""
    from trainers.tiny import build_tiny

    root = tmp_path_factory.mktemp("deploy")
    base = build_tiny(root / "base", hidden=32, layers=1)
    cfg = tiny_run_config(base, tones, name="deploy", seed=3, data__num_workers=0,
                          train={"log_every": 5, "eval_every": 1000, "heartbeat_seconds": 5.0},
                          phases=[{"name": "only", "epochs": 2, "lr": 5.0e-3, "warmup": 1}])
    run = train_to_end(cfg, root / "run.yaml", root / "run")
    assert (run / "exports" / "merged" / "config.json").exists() and (run / "exports" / "adapter").is_dir()
    return run


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 330.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave * (1 - 0.3 * c) for c in range(channels)], axis=1)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory, tones) -> Path:
    """A folder: the first test utterance as 16 kHz mono WAV, as 44.1 kHz stereo FLAC and as 22.05 kHz OGG;
    a subfolder with another WAV; an unreadable .wav; a text file (not audio: ignored)."""
    import torch
    import torchaudio.functional as AF

    from kidconsole.manifest import read_manifest

    root = tmp_path_factory.mktemp("audio")
    rows = list(read_manifest(tones["test"]))
    wave, sr = sf.read(rows[0].audio, dtype="float32")
    sf.write(root / "a16k.wav", wave, sr)
    w44 = AF.resample(torch.from_numpy(wave), sr, 44100).numpy()
    sf.write(root / "a44k-stereo.flac", np.stack([w44, w44], axis=1), 44100)
    w22 = AF.resample(torch.from_numpy(wave), sr, 22050).numpy()
    sf.write(root / "a22k.ogg", w22, 22050, format="OGG", subtype="VORBIS")
    (root / "sub").mkdir()
    w1, _ = sf.read(rows[1].audio, dtype="float32")
    sf.write(root / "sub" / "b.wav", w1, sr)
    (root / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really")
    (root / "notes.txt").write_text("not audio")
    return root


class ServeProcess:
    """``python -m kidconsole serve`` as a subprocess on a free loopback port, stopped by SIGTERM."""
    KEY = "s3cret-key"

    def __init__(self, model: Path, tmp: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        key = tmp / "key.txt"
        key.write_text(self.KEY + "\n")
        self.log = open(tmp / f"serve-{self.port}.log", "w+")
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "kidconsole", "serve", str(model), "--port", str(self.port),
                                      "--api-key-file", str(key), *extra], cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).json()["status"] == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server did not come up:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.log.close()


@pytest.fixture(scope="session")
def serve_process():
    """``ServeProcess(model, tmp, *flags)``: the server as a subprocess on a free loopback port."""
    return ServeProcess


@pytest.fixture(scope="session")
def speech_manifest(tmp_path_factory) -> Path:
    """Six synthetic utterances of one voice, 2-11 s each, as a manifest: speech to a voice-activity detector (the
    tones are not). Their phones are a placeholder: what the tests compare is decodes with decodes."""
    from kidconsole.corpus.synth import synthesize
    from kidconsole.manifest import Utterance, write_manifest

    root = tmp_path_factory.mktemp("speech")
    synthesize(root / "corpus", seed=1, adults=1, children_per_age=0, utterances_per_speaker=6)
    rows = []
    for wav in sorted((root / "corpus").rglob("*.wav")):
        info = sf.info(str(wav))
        rows.append(Utterance(id=wav.stem, audio=str(wav), duration=info.duration, sample_rate=info.samplerate,
                              speaker="s1", split="test", text="", phones="A"))
    write_manifest(root / "speech.jsonl", rows)
    return root / "speech.jsonl"
