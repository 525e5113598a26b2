"""Notifications: a toast, the bell and the user's command when a run ends, fails, stalls or is stopped;
runs that ended while the console was closed are told on the next start; the user config's errors."""

from __future__ import annotations

import os
import sys

import pytest

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.runs.state import STALL_AFTER
from kidconsole.tui import notify
from kidconsole.tui.notify import ConsoleSettings, NotifySettings, load_user_config

from .conftest import FIXED_NOW


async def _until(pilot, cond, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


def _messages(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_run_that_finishes_raises_a_toast_the_bell_and_runs_the_users_command(opened, runs_root, tmp_path):
    out = tmp_path / "told.txt"
    script = "import os, sys; open(sys.argv[1], 'w').write(sys.argv[2] + '|' + os.environ['KIDCONSOLE_RUN_DIR'])"
    settings = ConsoleSettings(notify=NotifySettings(command=[sys.executable, "-c", script, str(out),
                                                             "{run} {state} {step} {not-a-field}"]))
    async with opened(settings=settings) as pilot:
        app = pilot.app
        bells = []
        app.bell = lambda: bells.append(1)
        rundir.update_status(runs_root / "r16-lr3e-4", state=rundir.FINISHED)
        await _until(pilot, lambda: out.exists() and out.read_text())
        assert "r16-lr3e-4 finished at step 3,000" in _messages(app)
        assert bells == [1]
        assert out.read_text() == f"r16-lr3e-4 finished 3000 {{not-a-field}}|{runs_root / 'r16-lr3e-4'}"
        assert not any("r32" in m for m in _messages(app))  # only what changed is told


async def test_a_failed_or_stopped_run_is_told_and_toast_and_bell_can_be_turned_off(opened, runs_root):
    quiet = ConsoleSettings(notify=NotifySettings(toast=False, bell=False))
    async with opened(settings=quiet) as pilot:
        app = pilot.app
        bells = []
        app.bell = lambda: bells.append(1)
        rundir.update_status(runs_root / "r32-lr1e-4", state=rundir.FAILED)
        await _until(pilot, lambda: app.views[str(runs_root / "r32-lr1e-4")].state == rundir.FAILED)
        await pilot.pause(0.2)
        assert not bells and not _messages(app)
    async with opened() as pilot:
        app = pilot.app
        rundir.update_status(runs_root / "r16-lr3e-4", state=rundir.STOPPED)
        await _until(pilot, lambda: "r16-lr3e-4 stopped at step 3,000" in _messages(app))
        toast = next(n for n in app._notifications if "stopped" in n.message)
        assert toast.severity == "warning"


async def test_a_run_that_goes_quiet_is_told_as_stalled(opened, runs_root):
    now = [FIXED_NOW]
    for events in runs_root.glob(f"*/{rundir.EVENTS}"):  # written as long ago as the recording says
        os.utime(events, (FIXED_NOW - 5, FIXED_NOW - 5))
    async with opened(clock=lambda: now[0]) as pilot:
        app = pilot.app
        app.watcher.idle_every = 0.0  # rebuild quiet runs' views every round: the clock jumps here
        now[0] += STALL_AFTER + 60
        await _until(pilot, lambda: sum("stalled" in m for m in _messages(app)) == 2)
        assert "r16-lr3e-4 stalled at step 3,000" in _messages(app)


async def test_runs_that_ended_while_the_console_was_closed_are_told_on_the_next_start(opened, runs_root):
    async with opened() as pilot:
        assert not pilot.app.away  # the first start ever: nothing was seen before
        await _until(pilot, lambda: (notify.state_dir() / notify.SEEN_FILE).exists())
    rundir.update_status(runs_root / "r16-lr3e-4", state=rundir.FINISHED)
    rundir.update_status(runs_root / "r32-lr1e-4", state=rundir.FAILED)
    async with opened() as pilot:
        app = pilot.app
        assert [(e.name, e.state) for e in app.away] == [("r16-lr3e-4", "finished"), ("r32-lr1e-4", "failed")]
        assert any(m.startswith("Ended while you were away: r16-lr3e-4 finished at step 3,000; r32-lr1e-4 failed")
                   for m in _messages(app))
        await pilot.pause(0.3)  # the seen file catches up
    async with opened() as pilot:
        assert not pilot.app.away  # told once


def test_seen_saves_from_overlapping_threads_keep_the_newest_states(tmp_path):
    # Each state change saves from a worker thread; overlapping saves once crashed the console, and a late
    # one could write older states over newer.
    import threading

    seen = notify.Seen(tmp_path / "state" / notify.SEEN_FILE)
    threads = []
    for i in range(50):
        seen.states["run"] = f"state-{i}"
        seen.queue()
        threads.append(threading.Thread(target=seen.flush))
        threads[-1].start()
    for t in threads:
        t.join()
    assert notify.Seen.load(seen.path).states == {"run": "state-49"}
    assert [p.name for p in seen.path.parent.iterdir()] == [notify.SEEN_FILE]


def test_the_user_config_is_read_from_the_config_dir_and_its_errors_name_the_file_and_key(tmp_path):
    assert load_user_config() == ConsoleSettings()  # no file: the defaults
    path = notify.config_dir() / notify.USER_CONFIG
    path.parent.mkdir(parents=True)
    path.write_text("notify:\n  bell: false\n  command: [notify-send, kidconsole, '{run} {state}']\n")
    cfg = load_user_config()
    assert cfg.notify.bell is False and cfg.notify.toast is True
    assert cfg.notify.command == ["notify-send", "kidconsole", "{run} {state}"]
    for text, expected in (("notify:\n  command: notify-send 'run ended'\n", "never a shell string"),
                           ("notify:\n  tost: true\n", "notify.tost"),
                           ("notify:\n  states: [finished, exploded]\n", "notify.states"),
                           ("notify:\n  command: []\n", "empty list"),
                           ("notify: [\n", "not valid YAML")):
        path.write_text(text)
        with pytest.raises(KidconsoleError) as e:
            load_user_config()
        assert str(path) in str(e.value) and expected in str(e.value), str(e.value)


def test_a_failing_notify_command_is_reported_not_raised(tmp_path):
    ended = notify.Ended("k", "r1", "failed", 10, tmp_path)
    assert "no-such-command-xyz" in notify.run_command(["no-such-command-xyz"], ended)
    assert "exited 3: boom" in notify.run_command(
        [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], ended)
    assert notify.run_command([sys.executable, "-c", "pass"], ended) is None


def test_the_console_does_not_open_on_a_bad_user_config_and_says_why(tmp_path, capsys):
    from kidconsole.cli import main

    path = notify.config_dir() / notify.USER_CONFIG
    path.parent.mkdir(parents=True)
    path.write_text("notify:\n  command: say done\n")
    assert main(["--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "notify.command" in err
