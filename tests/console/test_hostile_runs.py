"""The console on run directories written to harm it: files that are not regular files (a FIFO blocks its
reader for good, ``/dev/urandom`` never ends), and names and texts carrying terminal escapes and markup."""

from __future__ import annotations

import json
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


# an OSC that sets the terminal's title, a CSI that clears the screen, a bell, Rich markup, a bidi override
EVIL = "\x1b]0;PWNED\x07\x1b[2J[bold red]red[/]\u202e"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J[bold red]red[/]\\u202e"
DIR = "r[blink]x\x1b]0;PWNED\x07\x1b[2J"  # a directory name cannot hold "/"
DIR_SHOWN = "r[blink]x\\x1b]0;PWNED\\x07\\x1b[2J"
CONTROLS = ("\x1b", "\x07", "\u202e", "\x9b")


def poison(root) -> str:
    """A copy of a recorded run whose directory name, status, events, decodes, predictions, config and log
    carry ``EVIL``; returns its key."""
    src = root / "r32-lr1e-4"
    run = root / DIR
    shutil.copytree(src, run)
    rundir.update_status(run, name="n" + EVIL, state=rundir.FAILED, error="boom " + EVIL, ended_at=time.time())
    t = rundir.read_status(run)["updated_at"]
    events = rundir.EventWriter(run / rundir.EVENTS)
    events.emit(rundir.EV_PHASE, t=t, phase=3, name="p" + EVIL, step=2400, epochs=1, lr=1e-4, total_steps=6000)
    events.emit(rundir.EV_WARNING, t=t, step=2400, what=rundir.BAD_SAMPLE, message="w" + EVIL, count=1,
                id="u" + EVIL)
    events.close()
    decodes = rundir.JsonlWriter(run / rundir.DECODES, rundir.DecodeRow)
    decodes.write({"t": t, "step": 2400, "phase": 3, "id": "d" + EVIL, "ref": "A B" + EVIL, "hyp": "A" + EVIL})
    decodes.close()
    rundir.write_rows(run / rundir.PREDICTIONS, rundir.PredictionRow, [
        {"id": f"u{i}" + EVIL, "ref": "A B C", "hyp": "A" + EVIL, "speaker": "s" + EVIL, "age": 5.0 + i,
         "gender": "F", "split": "test"} for i in range(4)])
    with open(run / rundir.CONFIG, "a") as fh:
        fh.write(f"lineage: {{method: {json.dumps('m' + EVIL)}}}\n")
    with open(run / rundir.STDOUT, "a") as fh:
        fh.write("log " + EVIL + "\n")
    return str(run.resolve())


def assert_shown_as_text(app, *expected):
    shown = screen_text(app)
    leaked = [c for c in CONTROLS if c in shown]
    assert not leaked, f"control characters on the screen: {leaked}\n{shown}"
    for part in expected:
        assert part in shown, f"{part!r} not on the screen:\n{shown}"


async def test_the_console_shows_names_and_texts_of_a_run_as_text(runs_root, console):
    key = poison(runs_root)
    app = console([runs_root])
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: key in app.views and app.views[key].step is not None, what="the poisoned run")
        await pilot.pause(0.3)
        assert_shown_as_text(app, "n\\x1b]0;PWNED")  # the card's title: the status name, markup as written
        assert "[bold red]red[/]" in screen_text(app) or "[bold" in screen_text(app)
        app.open_detail(key)
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.pause(0.3)
        assert_shown_as_text(app)
        for part, where in ((DIR_SHOWN, "#detail-status"), ("[bold red]red[/]", "#config-text")):  # off the screen here
            shown = str(app.screen.query_one(where).render())
            assert part in shown and not any(c in shown for c in CONTROLS), shown
        for tab, part in (("3", "log " + SHOWN), ("5", "w\\x1b]0;PWNED"), ("2", "")):
            await pilot.press(tab)
            await pilot.pause(0.3)
            assert_shown_as_text(app, part)
        await pilot.press("escape")
        app.open_decodes(key)
        await pilot.pause(0.5)
        assert_shown_as_text(app, "d\\x1b]0;PWNED")
        await pilot.press("escape")
        app.open_errors(key)
        await until(pilot, lambda: "macro PER" in screen_text(app), timeout=15, what="the errors screen")
        assert_shown_as_text(app, "n\\x1b]0;PWNED")
        await pilot.press("down", "enter")  # the 5-6 bucket's utterances
        await until(pilot, lambda: "worst first" in screen_text(app), what="the utterances")
        assert_shown_as_text(app, "\\x1b]0;PWNED", "s\\x1b]0;PWNED")
        await pilot.press("enter")  # the worst one's aligned decode
        await pilot.pause(0.5)
        assert_shown_as_text(app, "speaker s\\x1b]0;PWNED")
