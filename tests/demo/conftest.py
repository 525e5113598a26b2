"""Fixtures for the demo's tests: a very small synthetic corpus, async tests on a fresh loop."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests (Textual pilots) on a fresh event loop; no asyncio plugin needed."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None


@pytest.fixture
def small_scale():
    from kidconsole.demo import Scale

    return Scale("test", adults=4, children_per_age=2, utterances=3, tiny=(("hidden", 32), ("layers", 1)))


@pytest.fixture
def quiet_console():
    from rich.console import Console

    return Console(file=open("/dev/null", "w"), width=120)
