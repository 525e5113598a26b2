"""The console on run directories written to harm it: files that are not regular files (a FIFO blocks its
reader for good, ``/dev/urandom`` never ends), and names and texts carrying terminal escapes and markup."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from kidconsole import rundir
from kidconsole.tui.screens.run_detail import RunDetailScreen


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.fixture
def fifos():
    """FIFOs made by a test; at its end each is opened for writing once, so that a reader still blocked on
    it (the fault itself) wakes and the test process can end."""
    made = []

    def make(path):
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        made.append(path)
    yield make
    for path in made:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # no reader waits on it


async def until(pilot, predicate, timeout: float = 10.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}:\n{screen_text(pilot.app)}")


async def test_the_console_reads_only_regular_files_of_a_run(runs_root, console, fifos):
    urandom, fifo = runs_root / "r16-lr3e-4", runs_root / "r32-lr1e-4"
    (urandom / rundir.STDOUT).unlink()
    (urandom / rundir.STDOUT).symlink_to("/dev/urandom")
    for name in (rundir.STDOUT, rundir.CONFIG, rundir.DECODES):
        fifos(fifo / name)
    no_status = runs_root / "no-status"  # status.json a FIFO: the run reads from its events alone
    shutil.copytree(fifo, no_status, symlinks=True, ignore=shutil.ignore_patterns("*.log", "*.yaml", "decodes*"))
    fifos(no_status / rundir.STATUS)
    no_events = runs_root / "no-events"
    shutil.copytree(fifo, no_events, ignore=shutil.ignore_patterns("*.log", "*.yaml", "decodes*"))
    fifos(no_events / rundir.EVENTS)
    app = console([runs_root])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(app.views) == 4 and app.views[str(no_status)].step == 2400,
                    what="the four runs")
        for key, shown in ((str(urandom), "(stdout.log: a character device, not a regular file: not read)"),
                           (str(fifo), "(stdout.log: a FIFO, not a regular file: not read)")):
            app.open_detail(key)
            await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
            await pilot.press("3")
            await until(pilot, lambda: shown in screen_text(app), what=shown)
            if key == str(fifo):
                await pilot.press("1")
                await until(pilot, lambda: f"(no readable {rundir.CONFIG})" in screen_text(app))
                await pilot.press("v")
                await pilot.pause(0.3)
            await pilot.press("escape")
            await pilot.pause(0.1)
