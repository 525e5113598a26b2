"""Shared test settings. Area fixtures live in each tests/<area>/conftest.py."""

import asyncio
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# The tests never reach a model hub or download data.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
# subprocesses of the tests: on the CPU whatever the machine has, one thread each (2 cores are shared)
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory, monkeypatch):
    """The console's user config and remembered state live in a temp home, never the real one."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests (Textual pilots) on a fresh event loop; no asyncio plugin needed."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None


def _tiny_run_config(base: Path, tones: dict[str, Path], **over) -> dict:
    """A short LoRA run of the tiny model ``base`` on the tone corpus ``tones``; ``section__key=value``
    overrides one key, ``section=value`` a whole section."""
    cfg = {
        "name": "test",
        "seed": 7,
        "model": {"base": str(base), "start": "ctc", "freeze_feature_encoder": False},
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
    return cfg


def _train_to_end(cfg: dict, config: Path, run_dir: Path) -> Path:
    """Writes ``cfg`` to ``config`` and runs ``trainers.train`` on it into ``run_dir`` (it must succeed)."""
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "trainers.train", "--config", str(config), "--run-dir", str(run_dir)],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return run_dir


def _kidconsole(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kidconsole", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


# importlib mode cannot import conftest: the helpers reach the tests as fixtures
@pytest.fixture(scope="session")
def tiny_run_config():
    """Builds a run config dict: ``tiny_run_config(base, tones, **overrides)``."""
    return _tiny_run_config


@pytest.fixture(scope="session")
def train_to_end():
    """Trains a run to its end: ``train_to_end(config_dict, config_path, run_dir) -> run_dir``."""
    return _train_to_end


@pytest.fixture(scope="session")
def kidconsole():
    """Runs ``kidconsole ARGS...`` as a subprocess, as a user would."""
    return _kidconsole
