"""Fixtures for the fault-injection tests: the trainer's (tiny model, tone corpus, run configs) and the runs'."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import psutil
import pytest

TESTS = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path):
    # importlib mode: another area's conftest is loaded by path, its fixtures re-exported here
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_trainer = _load("trainer_fixtures", TESTS / "trainer" / "conftest.py")
tiny_model, tones, make_config, rd = _trainer.tiny_model, _trainer.tones, _trainer.make_config, _trainer.rd

for folder in (HERE, TESTS / "runs"):  # buggy_trainer; runs_helpers and fake_trainer
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
_runs = _load("runs_fixtures", TESTS / "runs" / "conftest.py")
fake_env, run_config = _runs.fake_env, _runs.run_config


@pytest.fixture(autouse=True)
def no_process_left(tmp_path):
    """Whatever a failing test leaves of its runs is killed: only processes that name this test's own
    tmp_path (other pytest sessions on the machine have their own)."""
    mine = str(tmp_path)
    before = set(psutil.pids())
    yield
    for p in set(psutil.pids()) - before:
        try:
            proc = psutil.Process(p)
            if any(mine in str(a) for a in proc.cmdline()):
                proc.kill()
        except psutil.Error:
            pass
