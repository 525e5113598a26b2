"""Fixtures: a tiny model and the tone corpus, a pool with speakers, ages and SNRs of several buckets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from trainers.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "model", hidden=32, layers=1)


@pytest.fixture(scope="session")
def tones(tmp_path_factory) -> dict[str, Path]:
    from trainers.tiny import tone_corpus

    return tone_corpus(tmp_path_factory.mktemp("tones"), n_train=30, n_valid=4, n_test=4)


@pytest.fixture
def kidconsole():
    """Runs ``kidconsole ARGS...`` as a subprocess, as a user would."""
    def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kidconsole", *map(str, args)], cwd=REPO, env=ENV,
                              capture_output=True, text=True, timeout=timeout)

    return run
