"""Pilot tests: the console driven by keys against recorded runs replayed into a temp folder."""

from __future__ import annotations

import json
import subprocess
import time

import psutil
import pytest

from kidconsole.tui.screens.charts import ChartsScreen
from kidconsole.tui.screens.confirm import ConfirmScreen
from kidconsole.tui.screens.dashboard import DashboardScreen
from kidconsole.tui.screens.decodes import DecodesScreen
from kidconsole.tui.screens.help import HelpScreen
from kidconsole.tui.screens.launch import LaunchScreen
from kidconsole.tui.screens.run_detail import RunDetailScreen, config_diff
from kidconsole.tui.widgets.aligned_decode import AlignedDecode
from kidconsole.tui.widgets.chart import Chart
from kidconsole.tui.widgets.run_card import RunCard


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_dashboard_shows_every_run_side_by_side_at_80_columns(opened):
    async with opened() as pilot:
        app = pilot.app
        cards = list(app.screen.query(RunCard))
        assert [c.view.name for c in cards] == ["r16-lr3e-4", "r32-lr1e-4"]
        assert cards[0].region.y == cards[1].region.y  # side by side
        text = screen_text(app)
        for expected in ("step 3,000/6,000", "step 2,400/6,000", "GPU0 93%", "GPU1 88%", "running",
                         "bad samples", "PER", "CER"):
            assert expected in text


async def test_arrow_keys_move_between_cards_and_space_marks_runs_for_the_charts(opened):
    async with opened() as pilot:
        app = pilot.app
        cards = list(app.screen.query(RunCard))
        assert app.focused is cards[0]
        await pilot.press("right")
        assert app.focused is cards[1]
        await pilot.press("space")
        assert app.marked == {cards[1].run_key}
        assert app.chart_keys() == [cards[1].run_key]
        await pilot.press("left", "a")
        assert app.marked == set(app.views)
        await pilot.press("a")
        assert app.marked == set() and len(app.chart_keys()) == 2


async def test_only_the_focused_card_has_the_heavy_border_as_focus_moves(opened):
    async with opened() as pilot:
        cards = list(pilot.app.screen.query(RunCard))
        for key, focused in (("right", 1), ("left", 0), ("right", 1)):
            await pilot.press(key)
            await pilot.pause()
            borders = [card.styles.border.top[0] for card in cards]
            assert borders == ["heavy" if i == focused else "round" for i in range(len(cards))], key


async def test_charts_overlay_runs_and_every_chart_key_changes_the_view(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("c")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, ChartsScreen) and not screen.grid
        chart = screen.query_one("#chart-0", Chart)
        assert [label for label, _ in chart.data.legend] == ["r16-lr3e-4", "r32-lr1e-4"]
        faint = [t for t in chart.data.traces if t.faint]
        assert len(faint) == 2 and len(chart.data.traces) == 4  # raw + EMA per run
        await pilot.press("x")
        assert screen.x_axis == "samples" and chart.data.x_kind == "samples"
        await pilot.press("x")
        await pilot.pause()
        assert chart.data.x_kind == "time" and chart.data.x_range[0] < 60  # time since each run's start
        await pilot.press("y")
        assert chart.data.log_y
        await pilot.press("plus")
        assert screen.ema_weight == 0.95
        await pilot.press("minus", "minus")
        assert screen.ema_weight == 0.8 and "EMA 0.8" in chart.data.note
        await pilot.press("3")
        await pilot.pause()
        per = screen.query_one("#chart-2", Chart)
        assert per.display and not chart.display and per.data.traces
        await pilot.press("tab")
        assert screen.current == 3
        await pilot.press("g")
        await pilot.pause()
        assert all(c.display for c in screen.query(Chart))
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_decodes_browse_evaluations_and_colour_the_errors(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("v")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, DecodesScreen)
        assert "step 3,000 (6/6)" in screen_text(app)
        await pilot.press("left", "left")
        await pilot.pause()
        assert "step 2,000 (4/6)" in screen_text(app)
        await pilot.press("home")
        await pilot.pause()
        assert "step 500 (1/6)" in screen_text(app)
        decodes = list(screen.query(AlignedDecode))
        assert len(decodes) == 3 and all(d.ref for d in decodes)
        await pilot.press("end")
        await pilot.pause()
        assert "step 3,000 (6/6)" in screen_text(app)


async def test_run_detail_tabs_and_config_diff_show_only_changed_keys(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("enter")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, RunDetailScreen)
        assert "lora:" in screen_text(app)
        # the augmentation of each phase, above the config, with what was applied so far
        assert "Augmentation" in screen_text(app) and "applied so far (utterances)" in screen_text(app)
        assert "SpecAugment" in str(screen.query_one("#augment-text").render())
        await pilot.press("2")
        await pilot.pause(0.2)
        table = screen.query_one("#diff-table")
        keys = [table.get_row_at(i)[0] for i in range(table.row_count)]
        assert keys == ["lora.alpha", "lora.r", "phases.0.lr", "phases.1.lr"]
        await pilot.press("3")
        await pilot.pause(0.2)
        assert "saved checkpoints/step-003000" in screen_text(app)
        await pilot.press("4")
        assert screen.query_one("#ckpt-table").row_count == 6
        await pilot.press("5")
        assert screen.query_one("#warn-table").row_count == 5
        await pilot.press("d")
        await pilot.pause(0.2)
        assert screen.other is not None
        await pilot.press("v")
        await pilot.pause(0.2)
        assert isinstance(app.screen, DecodesScreen)


def test_config_diff_flattens_nested_keys_and_lists_of_mappings():
    a = {"lora": {"r": 16, "target_modules": ["q", "v"]}, "phases": [{"lr": 1e-4}], "name": "a"}
    b = {"lora": {"r": 32, "target_modules": ["q", "v"]}, "phases": [{"lr": 1e-4}, {"lr": 5e-5}], "name": "b"}
    diff = config_diff(a, b)
    assert [k for k, _, _ in diff] == ["lora.r", "phases.1.lr"]


async def test_launch_form_turns_fields_into_overrides(tmp_path, runs_root, opened):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "lora.yaml").write_text("name: lora\nphases:\n  - {name: clean, lr: 3.0e-4}\n  - {name: all, lr: 1.0e-4}\n")
    launched = []

    def launcher(config, **kwargs):  # stands in for launching a trainer process
        launched.append((config, kwargs))
        return runs_root / "new-run"

    async with opened(configs_dir=configs, launcher=launcher) as pilot:
        app = pilot.app
        await pilot.press("n")
        await pilot.pause(0.3)
        assert isinstance(app.screen, LaunchScreen)
        screen = app.screen
        screen.query_one("#name").value = "r8"
        screen.query_one("#lora-r").value = "8"
        screen.query_one("#lr").value = "2e-4"
        screen.query_one("#phase").value = 1
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DashboardScreen)
    (config, kwargs), = launched
    assert config.endswith("lora.yaml") and kwargs["name"] == "r8" and kwargs["runs_root"] == str(runs_root)
    assert kwargs["overrides"] == ["lora.r=8", "phases=[{lr: 0.0001, name: all}]", "phases.0.lr=2e-4"]


async def test_launch_errors_are_shown_in_the_form(tmp_path, opened):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "broken.yaml").write_text("name: broken\nlora: {r: sixteen}\nphases: []\n")
    async with opened(configs_dir=configs) as pilot:  # the real launcher: it validates first
        app = pilot.app
        await pilot.press("n")
        await pilot.pause(0.3)
        await pilot.press("ctrl+s")
        await pilot.pause(0.5)
        error = str(app.screen.query_one("#launch-error").render())
        assert isinstance(app.screen, LaunchScreen) and "broken.yaml" in error


async def test_help_lists_the_keys_of_every_screen(opened):
    async with opened(size=(100, 100)) as pilot:
        app = pilot.app
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for expected in ("This screen (Runs)", "Everywhere", "Charts", "Log y", "Older eval", "Diff with", "Launch"):
            assert expected in text
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


def test_every_screen_has_its_help_and_its_row_in_the_docs():
    import importlib
    import inspect
    import pkgutil
    from pathlib import Path

    from textual.screen import Screen

    import kidconsole.tui.screens as screens
    from kidconsole.tui.app import KidConsole
    from kidconsole.tui.screens.help import help_sections, keys_markdown
    from kidconsole.tui.screens.pushed import PushedScreen, screen_bindings

    defined = set()
    for mod in pkgutil.iter_modules(screens.__path__):
        module = importlib.import_module(f"{screens.__name__}.{mod.name}")
        defined |= {cls for _, cls in inspect.getmembers(module, inspect.isclass)
                    if issubclass(cls, Screen) and cls.__module__ == module.__name__ and cls not in (HelpScreen, PushedScreen)}
    listed = screens.screen_classes()
    assert defined == set(listed), "screens missing from kidconsole.tui.screens.SCREENS"
    for cls in listed:
        titles = [title for title, _ in help_sections(cls, KidConsole.BINDINGS)]
        assert titles[0] == f"This screen ({cls.TITLE})" and len(set(titles)) == len(titles) == len(listed) + 1
        assert any(b.description for b in screen_bindings(cls)), f"{cls.__name__} has no described key"
    docs = (Path(__file__).parents[2] / "docs" / "console.md").read_text(encoding="utf-8")
    assert keys_markdown(KidConsole.BINDINGS) in docs, "docs/console.md: run python -m kidconsole.tui.screens.help"


async def test_help_on_a_screen_opened_from_another_starts_with_its_own_keys(opened):
    async with opened(size=(100, 60)) as pilot:
        app = pilot.app
        await pilot.press("s")
        await pilot.pause()
        app.set_focus(None)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        assert "This screen (Subsets)" in screen_text(app) and "Build" in screen_text(app)
        assert {"Errors", "Utterances", "Aligned decode", "Confusions", "Confirm"} <= {t for t, _ in app.screen.sections}


async def test_theme_toggles_between_dark_and_light(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark"


async def test_the_dashboard_follows_a_growing_run(growing_run, opened):
    root, replay = growing_run
    async with opened(roots=[root], runs=1) as pilot:
        app = pilot.app
        (before,) = app.views.values()
        replay.advance(replay.remaining)
        deadline = time.monotonic() + 10
        while app.views[before.key].step == before.step and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert app.views[before.key].step == 3000 > before.step
        await pilot.pause(0.1)
        assert "step 3,000/6,000" in screen_text(app)


async def test_stop_asks_first_and_no_leaves_the_run_alone(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, DashboardScreen)
        assert all(v.state == "running" for v in app.views.values())


@pytest.fixture
def run_with_process(runs_root):
    """The first recorded run pointed at a real process of its own (a stand-in trainer: sleep)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    run = runs_root / "r16-lr3e-4"
    status = json.loads((run / "status.json").read_text())
    status.update(pid=proc.pid, pgid=proc.pid, sid=proc.pid, create_time=psutil.Process(proc.pid).create_time())
    (run / "status.json").write_text(json.dumps(status))
    yield run, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_stop_confirmed_ends_the_runs_processes(run_with_process, opened):
    run, proc = run_with_process
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("x", "y")
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert proc.poll() is not None
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        key = next(k for k, v in app.views.items() if v.name == run.name)
        deadline = time.monotonic() + 10
        while app.views[key].state == "running" and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert app.views[key].state in ("stopped", "interrupted")


async def test_resume_is_refused_while_the_run_is_live(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)  # no confirmation: nothing to resume


async def test_errors_key_explains_when_there_are_no_predictions_yet(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert any("predictions.jsonl" in n.message for n in app._notifications)


async def test_subset_key_opens_the_subset_builder(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("s")
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "SubsetScreen"


async def test_the_lr_chart_draws_each_lr_group_of_a_run(opened, runs_root):
    events = runs_root / "r16-lr3e-4" / "events.jsonl"
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    for ev in rows:
        if ev["kind"] == "train":
            ev.update(lr_groups=["lower layers", "head"], group_lrs=[ev["lr"] * 0.1, ev["lr"] * 2])
    events.write_text("".join(json.dumps(ev) + "\n" for ev in rows))
    async with opened() as pilot:
        await pilot.press("c")
        await pilot.pause(0.2)
        screen = pilot.app.screen
        await pilot.press("5")
        await pilot.pause(0.2)
        chart = screen.query_one("#chart-4", Chart)
        labels = [label for label, _ in chart.data.legend]
        assert labels == ["r16-lr3e-4", "r32-lr1e-4", "r16-lr3e-4 · head", "r16-lr3e-4 · lower layers"]
        assert len(chart.data.traces) == 4 and len({c for _, c in chart.data.legend}) == 4
        top = max(float(max(t.hi)) for t in chart.data.traces)
        assert top == pytest.approx(2 * max(ev["lr"] for ev in rows if ev["kind"] == "train"), rel=0.01)
