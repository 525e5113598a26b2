"""Pilot tests: queued runs on the dashboard, and a sweep as a table sorted by best PER."""

from __future__ import annotations

import time

from textual.widgets import DataTable

from kidconsole import rundir
from kidconsole.tui.screens.dashboard import DashboardScreen
from kidconsole.tui.screens.sweep import SweepScreen
from kidconsole.tui.widgets.run_card import RunCard, card_text

SWEEP = "rank-20260101-000000"


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def make_sweep(root, with_sweep: bool = True):
    """The two recorded runs as points of one sweep, plus a third point still queued."""
    if with_sweep:
        rundir.update_status(root / "r16-lr3e-4", sweep=SWEEP, sweep_point=["lora.r=16", "phases.0.lr=3e-4"])
        rundir.update_status(root / "r32-lr1e-4", sweep=SWEEP, sweep_point=["lora.r=32", "phases.0.lr=1e-4"])
    rundir.update_status(root / "r8-lr5e-4", name="r8-lr5e-4", state=rundir.QUEUED, queued_at=time.time(),
                         gpus_per_run=1, queue_position=1, waiting_for="1 GPU (0 of 2 free: 2 held by runs)",
                         **({"sweep": SWEEP, "sweep_point": ["lora.r=8", "phases.0.lr=5e-4"]} if with_sweep else {}))


async def until_loaded(pilot, n: int = 3) -> None:
    app = pilot.app
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        loaded = [v for v in app.views.values() if v.state == rundir.QUEUED or v.step is not None]
        if len(app.views) == n and len(loaded) == n:
            await pilot.pause(0.1)
            return
        await pilot.pause(0.05)
    raise AssertionError(f"expected {n} runs, the console shows {len(app.views)}")


def table_rows(app) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_a_queued_card_shows_its_place_and_what_it_waits_for(runs_root, console):
    make_sweep(runs_root)
    app = console([runs_root])
    async with app.run_test(size=(120, 30)) as pilot:
        await until_loaded(pilot)
        assert [c.view.name for c in app.screen.query(RunCard)] == ["r16-lr3e-4", "r32-lr1e-4", "r8-lr5e-4"]
        text = screen_text(app)
        assert "queued #1" in text and "waits for 1 GPU (0 of 2 free" in text and "sweep point lora.r=8" in text
        queued = next(c for c in app.screen.query(RunCard) if c.view.name == "r8-lr5e-4")
        assert "phases.0.lr=5e-4" in card_text(queued.view, 36).plain
        assert queued.view.state == rundir.QUEUED and "queued" in str(queued.border_subtitle)


async def test_the_sweep_table_sorts_by_best_per_and_by_each_varied_key(runs_root, console):
    make_sweep(runs_root)
    app = console([runs_root])
    async with app.run_test(size=(120, 30)) as pilot:
        await until_loaded(pilot)
        await pilot.press("w")
        await pilot.pause(0.2)
        assert isinstance(app.screen, SweepScreen)
        table = app.screen.query_one(DataTable)
        assert [str(c.label) for c in table.columns.values()][:3] == ["run", "lora.r", "phases.0.lr"]
        rows = table_rows(app)
        assert [r[0] for r in rows] == ["r16-lr3e-4", "r32-lr1e-4", "r8-lr5e-4"]  # best PER first, none last
        assert rows[0][6] == "23.16%" and rows[2][3] == "queued #1" and rows[2][6] == "-"
        assert f"sweep {SWEEP}: 3 runs, 2 with an evaluation; sorted by best PER" in screen_text(app)
        await pilot.press("k")  # lora.r, as a number
        await pilot.pause(0.1)
        assert [r[1] for r in table_rows(app)] == ["8", "16", "32"]
        await pilot.press("k")  # phases.0.lr
        await pilot.pause(0.1)
        assert [r[2] for r in table_rows(app)] == ["1e-4", "3e-4", "5e-4"]
        await pilot.press("p")
        await pilot.pause(0.1)
        assert [r[0] for r in table_rows(app)][0] == "r16-lr3e-4"
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "RunDetailScreen"
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_sweep_key_on_a_run_of_no_sweep_explains(runs_root, console):
    make_sweep(runs_root, with_sweep=False)
    app = console([runs_root])
    async with app.run_test(size=(120, 30)) as pilot:
        await until_loaded(pilot)
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert any("not part of a sweep" in n.message for n in app._notifications)
