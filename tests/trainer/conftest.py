"""Fixtures: a tiny model and a toy tone corpus on disk, and run-config files built from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from trainers.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tones(tmp_path_factory) -> dict[str, Path]:
    from trainers.tiny import tone_corpus

    return tone_corpus(tmp_path_factory.mktemp("tones"), n_train=40, n_valid=10, n_test=8)


@pytest.fixture
def make_config(tmp_path, tiny_model, tones):
    """Write a small run config (overrides merged into the base) and return its path."""

    def make(**over) -> Path:
        cfg = {
            "name": "test",
            "seed": 7,
            "model": {"base": str(tiny_model), "start": "ctc", "freeze_feature_encoder": False},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            "data": {"train_manifest": str(tones["train"]), "valid_manifest": str(tones["valid"]),
                     "test_manifest": str(tones["test"]), "max_seconds": 4.0, "batch_seconds": 8.0,
                     "max_batch_utterances": 16, "bucket_utterances": 64, "num_workers": 1,
                     "eval_batch_seconds": 40.0},
            "train": {"log_every": 1, "eval_every": 50, "keep_last": 2, "heartbeat_seconds": 1.0,
                      "stop_timeout": 60.0},
            "phases": [{"name": "only", "epochs": 1, "lr": 3.0e-3, "warmup": 1}],
        }
        for key, value in over.items():
            node = cfg
            *path, last = key.split("__")
            for p in path:
                node = node.setdefault(p, {})
            node[last] = value
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return path

    return make


def events(run_dir: Path, kind: str | None = None) -> list[dict]:
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    out = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [e for e in out if kind is None or e["kind"] == kind]


def status(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "status.json").read_text(encoding="utf-8"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(config: Path, run_dir: Path, *extra: str, processes: int = 1, module: str = "trainers.train",
           env: dict[str, str] | None = None) -> subprocess.Popen:
    """``accelerate launch`` the trainer (``module``) as the launcher does, in its own session."""
    # a free port each time: the previous multi-process test may still hold the default one
    dist = ["--cpu", "--num_processes", "1"] if processes == 1 else \
        ["--multi_gpu", "--num_processes", str(processes), "--main_process_port", str(free_port())]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *dist, "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", module,
           "--config", str(config), "--run-dir", str(run_dir), *extra]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "stdout.log", "ab")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout  # the wall clock here can step
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def rd():
    """Run-directory helpers for the tests (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(events=events, status=status, launch=launch, wait_for=wait_for)


@pytest.fixture
def shipped_config(tiny_model, tones):
    """Load a config of configs/ with its model and manifests pointed at the test's tiny ones."""
    from kidconsole.config import load_config

    def load(name: str, extra: list[str] = ()) -> dict:
        path = REPO / "configs" / f"{name}.yaml"
        sets = [f"model.base={tiny_model}", f"data.train_manifest={tones['train']}",
                f"data.valid_manifest={tones['valid']}", f"data.test_manifest={tones['test']}"]
        raw = yaml.safe_load(path.read_text())
        sets += [f"phases.{i}.manifest={tones['train']}" for i, p in enumerate(raw["phases"]) if p.get("manifest")]
        return load_config(path, [*sets, *extra])

    return load
