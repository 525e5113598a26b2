"""Fixtures for the runs tests: a valid config and the fake trainer on PYTHONPATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # runs_helpers, fake_trainer


@pytest.fixture
def fake_env(monkeypatch):
    """The fake trainer importable by the launched processes, with fast defaults."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("FAKE_STEPS", "40")
    monkeypatch.setenv("FAKE_STEP_S", "0.02")
    return monkeypatch


@pytest.fixture
def run_config(tmp_path) -> Path:
    """A config that kidconsole.config validates: a model folder and manifests that exist."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # the launcher checks that it is a saved model folder
    for name in ("train.tsv", "valid.tsv"):
        (tmp_path / name).write_text("")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "model: {base: model}\n"
        "data: {train_manifest: train.tsv, valid_manifest: valid.tsv}\n"
        "phases: [{name: only, epochs: 1}]\n"
    )
    return cfg
