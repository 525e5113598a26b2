"""Fixtures: recorded runs replayed into a temp runs root, a fixed clock, a fake GPU sampler."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from kidconsole.tui.replay import Replay, replay_all

RECORDINGS = Path(__file__).parent / "recordings"


def recorded_end() -> float:
    """The time of the last recorded event across the recordings."""
    last = 0.0
    for events in RECORDINGS.glob("*/events.jsonl"):
        last = max(last, json.loads(events.read_text().splitlines()[-1])["t"])
    return last


FIXED_NOW = recorded_end() + 5.0


@dataclass
class FakeGpu:
    index: int
    util: float
    mem_used: float
    mem_total: float
    temp: float
    power: float


class FakeSystem:
    """Two GPUs, both busy, a roomy disk, the same numbers every time (snapshots stay stable)."""

    def __init__(self):
        self.gpus = [FakeGpu(0, 93.0, 41.2 * 2**30, 80 * 2**30, 71.0, 287.0),
                     FakeGpu(1, 88.0, 52.7 * 2**30, 80 * 2**30, 66.0, 251.0)]
        self.disk = (812.4 * 2**30, 1800 * 2**30)

    def sample_gpus(self):
        return list(self.gpus)

    def run_gpu_memory(self, pid, sid=None):
        return {}

    def run_process_usage(self, pid, sid=None):
        return 312.0, 6.4 * 2**30

    def host_memory(self):
        return 97.3 * 2**30, 503.0 * 2**30

    def disk_usage(self, path):
        return self.disk

    def folder_bytes(self, path):
        return 0


@pytest.fixture
def runs_root(tmp_path) -> Path:
    root = tmp_path / "runs"
    replay_all(RECORDINGS, root, start=10**9)
    return root


@pytest.fixture
def growing_run(tmp_path) -> tuple[Path, Replay]:
    """One recorded run replayed half-way; the test appends the rest with ``advance``."""
    root = tmp_path / "runs"
    src = RECORDINGS / "r16-lr3e-4"
    n = len((src / "events.jsonl").read_text().splitlines())
    return root, Replay(src, root / src.name, start=n // 2)


def make_app(roots, **kwargs):
    from kidconsole.tui.app import KidConsole

    kwargs.setdefault("clock", lambda: FIXED_NOW)
    kwargs.setdefault("system", FakeSystem())
    kwargs.setdefault("interval", 0.05)
    return KidConsole([str(r) for r in roots], **kwargs)


async def wait_for_runs(pilot, n: int, timeout: float = 10.0) -> None:
    """Until the dashboard shows ``n`` runs with their history loaded."""
    import time

    app = pilot.app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(app.views) == n and all(v.step is not None for v in app.views.values()):
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError(f"expected {n} runs, the console shows {len(app.views)}")


@pytest.fixture
def fake_system() -> FakeSystem:
    return FakeSystem()


@pytest.fixture
def fixed_now() -> float:
    return FIXED_NOW


@pytest.fixture
def console():
    """Factory of consoles on given roots, with the fixed clock and the fake GPUs."""
    return make_app


@pytest.fixture
def until_runs():
    return wait_for_runs


@pytest.fixture
def opened(request):
    """``async with opened(...) as pilot``: a console (fixed clock, fake GPUs) on the recorded runs, or on
    ``roots``, once it shows ``runs`` runs with their history."""
    @contextlib.asynccontextmanager
    async def opened(size=(80, 24), roots=None, runs=2, **kwargs):
        app = make_app(roots or [request.getfixturevalue("runs_root")], **kwargs)
        async with app.run_test(size=size) as pilot:
            await wait_for_runs(pilot, runs)
            yield pilot
    return opened

