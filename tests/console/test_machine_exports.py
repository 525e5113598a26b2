"""The machine on cards and in the system tab (real psutil samplers and the fake GPUs); the exports tab and
the key that starts an export in the background."""

from __future__ import annotations

from pathlib import Path

import psutil

from kidconsole import rundir
from kidconsole.report.exports import write_record
from kidconsole.runs import system
from kidconsole.tui.screens.confirm import ConfirmScreen
from kidconsole.tui.screens.run_detail import RunDetailScreen
from kidconsole.tui.watcher import Watcher
from kidconsole.tui.widgets.run_card import RunCard, system_line

from .conftest import FIXED_NOW, FakeSystem
from .test_console import screen_text


def test_watcher_samples_process_memory_disk_and_checkpoint_with_the_real_samplers(runs_root):
    run = runs_root / "r16-lr3e-4"  # replayed runs name this test process as theirs: a live process to sample
    rundir.update_status(runs_root / "r32-lr1e-4", pid=0)  # and this one no process at all
    ckpt = rundir.newest_checkpoint(run / rundir.CHECKPOINTS)
    (ckpt / "adapter.bin").write_bytes(b"\0" * 123_456)
    watcher = Watcher([str(runs_root)], clock=lambda: FIXED_NOW, system=system)
    watcher.poll_once()
    view = watcher.views[str(run)]
    sysv = view.system
    assert view.state == rundir.RUNNING
    assert sysv.cpu is not None and sysv.rss >= psutil.Process().memory_info().rss // 2
    assert sysv.host_mem_total == psutil.virtual_memory().total and 0 < sysv.host_mem_used <= sysv.host_mem_total
    assert sysv.disk_free == psutil.disk_usage(str(run)).free or 0 < sysv.disk_free <= sysv.disk_total
    assert sysv.checkpoint_bytes == system.folder_bytes(ckpt) >= 123_456
    assert not sysv.disk_short
    line = system_line(view).plain
    assert line.startswith("cpu ") and "free" in line
    assert watcher.views[str(runs_root / "r32-lr1e-4")].system.cpu is None


class TightDisk(FakeSystem):
    """A disk with less free space than the run's last checkpoint takes."""

    def __init__(self):
        super().__init__()
        self.disk = (1.5 * 2**30, 1800 * 2**30)

    def folder_bytes(self, path):
        return 3.2 * 2**30


async def test_cards_show_gpu_temperature_power_and_disk_and_the_system_tab_shows_the_machine(opened):
    async with opened(size=(100, 40)) as pilot:
        app = pilot.app
        text = screen_text(app)
        assert "cpu 312% 6.4G  71°C 287W  812G free" in text
        await pilot.press("enter", "7")
        await pilot.pause(0.3)
        assert isinstance(app.screen, RunDetailScreen)
        text = screen_text(app)
        for expected in ("host memory", "97.3G / 503.0G (19%)", "812.4G free of 1800.0G", "71°C", "287W", "93%"):
            assert expected in text, expected


async def test_a_checkpoint_that_will_not_fit_is_warned_on_the_card_and_in_the_system_tab(opened, runs_root):
    async with opened(size=(100, 40), system=TightDisk()) as pilot:
        app = pilot.app
        for _ in range(40):
            if (v := app.views.get(str(runs_root / "r16-lr3e-4"))) and v.system and v.system.cpu:
                break
            await pilot.pause(0.1)
        card = next(c for c in app.screen.query(RunCard) if c.view.name == "r16-lr3e-4")
        await pilot.pause(0.2)
        assert "⚠ disk 1.5G free < checkpoint 3.2G" in screen_text(app)
        assert system_line(card.view).plain.startswith("⚠ disk")
        await pilot.press("enter", "7")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "CPU 312% of a core · resident 6.4G" in text
        assert "the next checkpoint will not fit" in text


def _exported(run: Path) -> None:
    for kind, per, size in (("torch-fp32", 0.21, 4_000_000), ("onnx-fp32", 0.21, 4_100_000),
                            ("onnx-int8", 0.2134, 1_100_000)):
        folder = run / rundir.EXPORTS / kind
        folder.mkdir(parents=True)
        rundir.update_status(folder, state=rundir.FINISHED, name=f"{run.name}/{kind}")
        (folder / rundir.ONNX_MODEL).write_bytes(b"\0" * size)
        write_record(folder, {"kind": kind, "size_bytes": size, "size_vs_fp32": size / 4_000_000, "cpu": "test cpu",
                              "threads": 2, "speed_audio_seconds": 30.0, "rtf_batch1": 0.05, "rtf_batched": 0.02,
                              "speedup_batch1": 1.0, "per": per, "n": 40, "delta_per": per - 0.21,
                              "delta_per_ci": [-0.002, 0.009], "significant": False, "max_logit_diff": 2e-5,
                              "worst_phones": [{"phone": "ㅃ", "delta": 0.03}]})
    (run / rundir.EXPORTS / "merged").mkdir()
    (run / rundir.EXPORTS / rundir.EXPORT_LOG).write_text("onnx-int8: scored 40 utterances\nexport table written\n")


async def test_the_exports_tab_lists_what_exists_and_the_export_table(opened, runs_root):
    _exported(runs_root / "r16-lr3e-4")
    async with opened(size=(160, 48)) as pilot:
        app = pilot.app
        await pilot.press("enter", "8")
        await pilot.pause(0.5)
        text = screen_text(app)
        for expected in ("merged", "onnx-int8", "finished", "ΔPER", "21.34", "+0.34", "ㅃ +3.00",
                         "export table written"):
            assert expected in text, expected


async def test_o_starts_an_export_in_the_background_after_a_confirmation(opened, runs_root):
    started = []
    async with opened(exporter=lambda path: started.append(path) or 4242) as pilot:
        app = pilot.app
        await pilot.press("enter")
        await pilot.pause(0.2)
        await pilot.press("o")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert started == [runs_root / "r16-lr3e-4"]
        assert any("export started (pid 4242)" in n.message for n in app._notifications)
        assert app.screen.query_one("#detail-tabs").active == "exports"


async def test_an_export_of_an_unfinished_run_is_refused_with_the_reason(opened):
    async with opened() as pilot:  # the real start_export: the recorded runs have no exports/merged
        app = pilot.app
        await pilot.press("enter", "o")
        await pilot.pause(0.2)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert any("nothing to export yet" in n.message and n.severity == "error" for n in app._notifications)


async def test_a_running_export_is_not_started_twice(opened, runs_root):
    _exported(runs_root / "r16-lr3e-4")
    folder = runs_root / "r16-lr3e-4" / rundir.EXPORTS / "onnx-int8"
    rundir.update_status(folder, state=rundir.EVALUATING, updated_at=FIXED_NOW + 1e6)  # fresh: not stalled
    started = []
    async with opened(exporter=lambda path: started.append(path) or 1) as pilot:
        app = pilot.app
        await pilot.press("enter", "8")
        await pilot.pause(0.5)
        await pilot.press("o")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen) and not started
        assert any("already running" in n.message for n in app._notifications)


def test_the_host_and_disk_samplers_read_the_real_machine(tmp_path):
    used, total = system.host_memory()
    assert total == psutil.virtual_memory().total and 0 < used < total
    free, size = system.disk_usage(tmp_path)
    assert 0 < free <= size == psutil.disk_usage(str(tmp_path)).total
    assert system.disk_usage(tmp_path / "gone") is None
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"x" * 5000)
    (tmp_path / "b.txt").write_text("hello")
    assert system.folder_bytes(tmp_path) == 5005


def test_quiet_runs_keep_their_view_until_something_changes_and_live_ones_are_rebuilt_now_and_then(runs_root):
    rundir.update_status(runs_root / "r32-lr1e-4", state=rundir.FINISHED)
    watcher = Watcher([str(runs_root)], clock=lambda: FIXED_NOW, system=FakeSystem(), idle_every=3600)
    built = []
    view = watcher._view
    watcher._view = lambda key, reader, now: built.append(key.rsplit("/", 1)[1]) or view(key, reader, now)
    watcher.poll_once()
    watcher.poll_once()
    assert sorted(built) == ["r16-lr3e-4", "r32-lr1e-4"]  # the second round rebuilt nothing
    rundir.update_status(runs_root / "r16-lr3e-4", state=rundir.STOPPED)  # a status change rebuilds at once
    watcher.poll_once()
    assert built[2:] == ["r16-lr3e-4"] and watcher.views[str(runs_root / "r16-lr3e-4")].state == rundir.STOPPED
    rundir.update_status(runs_root / "r16-lr3e-4", state=rundir.RUNNING)
    watcher.poll_once()
    watcher.idle_every = 0.0
    watcher.poll_once()
    assert built[3:] == ["r16-lr3e-4", "r16-lr3e-4"]  # live and quiet: rebuilt once idle_every passed
