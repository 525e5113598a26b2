"""Fixtures for the demo's tests: a very small synthetic corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_scale():
    from kidconsole.demo import Scale

    return Scale("test", adults=4, children_per_age=2, utterances=3, tiny=(("hidden", 32), ("layers", 1)))


@pytest.fixture
def quiet_console():
    from rich.console import Console

    return Console(file=open("/dev/null", "w"), width=120)
