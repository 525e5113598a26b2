"""The subset builder screen: keyboard only, build on a worker, report in tables."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.widgets import DataTable, Input, Static

from kidconsole.tui.screens.subset import SubsetScreen

class Host(App):
    def __init__(self, screen: SubsetScreen):
        super().__init__()
        self.subset_screen = screen

    def on_mount(self) -> None:
        self.push_screen(self.subset_screen)


async def wait_for_build(pilot, screen: SubsetScreen) -> None:
    for _ in range(600):
        await pilot.pause(0.05)
        if not screen.building and (screen.result is not None or screen.error is not None):
            return
    raise AssertionError("the build did not finish")


@pytest.mark.slow
async def test_b_builds_and_shows_the_report(corpus, tmp_path):
    screen = SubsetScreen(manifest=corpus, out_dir=tmp_path / "s")
    app = Host(screen)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.click("#hours")
        await pilot.press("5")
        await pilot.press("escape")          # leave the field: keys are actions again
        assert not isinstance(screen.focused, Input)
        await pilot.press("b")
        await wait_for_build(pilot, screen)
        assert screen.error is None
        splits = screen.query_one("#splits", DataTable)
        assert splits.display and splits.row_count == 7
        assert splits.get_row("train")[0] == "train"
        shares = screen.query_one("#shares", DataTable)
        assert shares.get_row("age:5-6")[0] == "age 5-6"
        assert (tmp_path / "s" / "report.md").exists()
        assert abs(screen.result.options["hours"] - 5) < 1e-9
        await pilot.press("escape")
        assert app.screen is not screen


async def test_a_bad_field_is_reported_without_building(corpus, tmp_path):
    screen = SubsetScreen(manifest=corpus, out_dir=tmp_path / "s")
    app = Host(screen)
    async with app.run_test(size=(120, 60)) as pilot:
        screen.query_one("#split", Input).value = "0.9/oops"
        await pilot.press("enter")           # enter in a field builds too
        await pilot.pause()
        assert screen.error == "Split shares: expected numbers separated by '/' or ',', got '0.9/oops'"
        assert "Cannot build" in str(screen.query_one("#status", Static).render())
        assert not (tmp_path / "s").exists()


async def test_an_impossible_request_shows_the_builders_reason(corpus, tmp_path):
    screen = SubsetScreen(manifest=corpus, out_dir=tmp_path / "s")
    app = Host(screen)
    async with app.run_test(size=(120, 60)) as pilot:
        screen.query_one("#hours", Input).value = "99999"
        screen.set_focus(None)
        await pilot.press("b")
        await wait_for_build(pilot, screen)
        assert screen.error.startswith("asked for 99999.00 h")


async def test_errors_name_the_form_fields_that_fix_them(corpus, tmp_path):
    screen = SubsetScreen(manifest=corpus, out_dir=tmp_path / "s")
    app = Host(screen)
    async with app.run_test(size=(120, 60)) as pilot:
        screen.query_one("#hours", Input).value = "60"
        screen.query_one("#split", Input).value = "0.5/0.2/0.3"
        screen.set_focus(None)
        await pilot.press("b")
        await wait_for_build(pilot, screen)
        assert "'Pool the source splits'" in screen.error and "Hours" in screen.error
        assert "use_source_splits" not in screen.error and "--" not in screen.error
