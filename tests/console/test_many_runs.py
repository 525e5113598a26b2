"""A sweep of 24 runs on the dashboard: filter by name, state and config key; sort by best PER or start;
group by the config the runs were launched from."""

from __future__ import annotations

import pytest

from kidconsole import rundir
from kidconsole.tui import arrange
from kidconsole.tui.replay import replay_sweep
from kidconsole.tui.widgets.run_card import RunCard

from .conftest import RECORDINGS
from .test_console import screen_text

N = 24


@pytest.fixture
def sweep_root(tmp_path):
    root = tmp_path / "runs"
    replay_sweep(RECORDINGS, root, N)
    return root


def names(app) -> list[str]:
    return [c.view.name for c in app.screen.query(RunCard)]


async def _filter(pilot, text: str) -> None:
    await pilot.press("slash")
    await pilot.press(*["space" if ch == " " else ch for ch in text])
    await pilot.press("enter")
    await pilot.pause(0.3)


async def test_the_filter_keeps_runs_by_name_state_and_config_key(opened, sweep_root):
    for i in (1, 3, 5):  # three r32 runs have finished
        rundir.update_status(sweep_root / f"r32-lr1e-4-{i:02d}", state=rundir.FINISHED)
    async with opened(size=(80, 24), roots=[sweep_root], runs=N) as pilot:
        app = pilot.app
        assert len(names(app)) == N
        await _filter(pilot, "r32")
        assert len(names(app)) == 12 and all("r32" in n for n in names(app))
        assert "filter 'r32': 12 of 24 runs" in screen_text(app)
        await _filter(pilot, "state:finished")
        assert names(app) == ["r32-lr1e-4-01", "r32-lr1e-4-03", "r32-lr1e-4-05"]
        await _filter(pilot, "lora.r=16")
        await pilot.pause(0.5)  # the configs load off the UI thread
        assert len(names(app)) == 12 and all(n.startswith("r16") for n in names(app))
        await _filter(pilot, "r=32 state:running")  # a key's last part matches too; terms combine
        assert len(names(app)) == 9 and all(n.startswith("r32") for n in names(app))
        await pilot.press("slash", "escape")
        await pilot.pause(0.2)
        assert len(names(app)) == N and "filter" not in screen_text(app).split("\n")[1]


async def test_a_filter_that_matches_nothing_says_so_and_a_bad_one_is_an_error(opened, sweep_root):
    async with opened(roots=[sweep_root], runs=N) as pilot:
        app = pilot.app
        await _filter(pilot, "nosuchrun")
        assert not names(app) and "No run matches the filter 'nosuchrun' (24 runs)" in screen_text(app)
        await _filter(pilot, "=3")
        assert any("a config key before '='" in n.message for n in app._notifications)


async def test_sort_by_best_per_then_newest_start_and_back_to_name(opened, sweep_root):
    async with opened(roots=[sweep_root], runs=N) as pilot:
        app = pilot.app
        assert names(app) == sorted(names(app))
        await pilot.press("o")
        await pilot.pause(0.3)
        pers = [arrange.best_per(c.view) for c in app.screen.query(RunCard)]
        assert pers == sorted(pers) and pers[0] < pers[-1] and "sorted by best PER" in screen_text(app)
        await pilot.press("o")
        await pilot.pause(0.3)
        assert names(app) == [f"{('r16-lr3e-4', 'r32-lr1e-4')[i % 2]}-{i:02d}" for i in reversed(range(N))]
        await pilot.press("o")
        await pilot.pause(0.3)
        assert names(app) == sorted(names(app))


async def test_group_shows_the_runs_of_each_launch_config_under_its_name(opened, sweep_root):
    async with opened(size=(120, 40), roots=[sweep_root], runs=N) as pilot:
        app = pilot.app
        await pilot.press("g")
        await pilot.pause(0.4)
        heads = [str(h.render()) for h in app.screen.query(".group-head")]
        assert heads == ["sweep-0 · 8 runs", "sweep-1 · 8 runs", "sweep-2 · 8 runs"]
        assert names(app)[:3] == ["r16-lr3e-4-00", "r16-lr3e-4-06", "r16-lr3e-4-12"]
        assert "grouped by launch config" in screen_text(app)
        cards = list(app.screen.query(RunCard))
        for _ in range(3):  # 8 runs at 3 a row: the third row of the first group holds 2
            await pilot.press("down")
        assert app.focused is cards[8]  # the first run of the second group, below the header
        await pilot.press("g")
        await pilot.pause(0.3)
        assert not list(app.screen.query(".group-head"))


def test_filter_terms_parse_and_compare_numbers_as_numbers():
    terms = arrange.parse_filter("r16 state:running,stalled phases.0.lr=3e-4")
    assert [t.kind for t in terms] == ["text", "state", "config"]
    assert arrange._same(0.0003, "3e-4") and not arrange._same(0.0003, "1e-4")
    assert arrange._same(True, "true") and arrange._same(None, "null") and arrange._same("ctc", "ctc")
    with pytest.raises(arrange.FilterError, match="state:running"):
        arrange.parse_filter("state:")
