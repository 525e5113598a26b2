"""The new-run form lists the shipped configs and the user's own; a user in an empty folder gets from nothing
to a launched run with `kidconsole config` and the form, never reading the repository."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from textual.widgets import Select

from kidconsole import rundir
from kidconsole.cli import main
from kidconsole.config_files import packaged
from kidconsole.tui.screens.dashboard import DashboardScreen
from kidconsole.tui.screens.launch import LaunchScreen


async def open_form(pilot) -> LaunchScreen:
    await pilot.press("n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        screen = pilot.app.screen
        if isinstance(screen, LaunchScreen) and screen.configs:
            return screen
        await pilot.pause(0.05)
    raise AssertionError("the form did not list its configs")


async def test_the_form_lists_your_configs_then_the_shipped_ones(tmp_path, monkeypatch, opened):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "lora.yaml").write_text("name: lora\nphases: [{name: a}]\n")
    (tmp_path / "mine.yaml").write_text("name: mine\nphases: [{name: a}]\n")
    (tmp_path / "notes.yaml").write_text("todo: [not a run config]\n")
    async with opened(configs_dir="configs") as pilot:
        screen = await open_form(pilot)
        options = [str(label) for label, _ in screen.query_one("#config", Select)._options[1:]]
        assert options == ["configs/lora.yaml", "mine.yaml", *(f"{n}  (shipped)" for n in packaged())]


async def test_launching_a_shipped_config_copies_it_into_configs_first(tmp_path, monkeypatch, opened):
    monkeypatch.chdir(tmp_path)
    launched = []

    def launcher(config, **kwargs):  # stands in for the trainer process: what matters is which file
        launched.append(config)
        return tmp_path / "runs" / "new"

    async with opened(configs_dir="configs", launcher=launcher) as pilot:
        screen = await open_form(pilot)
        screen.query_one("#config", Select).value = str(packaged()["tiny_cpu"])
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert isinstance(pilot.app.screen, DashboardScreen)
    assert launched == ["configs/tiny_cpu.yaml"]
    copy = (tmp_path / "configs" / "tiny_cpu.yaml").read_text()
    assert "# EDIT: " in copy and "base: ../build/tiny-model" in copy


async def test_a_shipped_config_that_cannot_launch_leaves_its_marked_copy_chosen(tmp_path, monkeypatch, opened):
    monkeypatch.chdir(tmp_path)
    async with opened(configs_dir="configs") as pilot:  # the real launcher: it validates first
        screen = await open_form(pilot)
        screen.query_one("#config", Select).value = str(packaged()["tiny_cpu"])
        await pilot.press("ctrl+s")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and screen.query_one("#config", Select).value != "configs/tiny_cpu.yaml":
            await pilot.pause(0.05)
        error = str(screen.query_one("#launch-error").render())
        assert "does not exist" in error and "copied to configs/tiny_cpu.yaml" in error
        assert screen.query_one("#config", Select).value == "configs/tiny_cpu.yaml"


@pytest.mark.slow
async def test_from_an_empty_folder_to_a_launched_run_with_config_new_and_the_form(tmp_path, monkeypatch, opened,
                                                                                  capsys):
    from trainers.tiny import build_tiny, tone_corpus

    monkeypatch.chdir(tmp_path)
    # what the user brings: a model and manifests (here the tiny model and the tone corpus)
    build_tiny(tmp_path / "model")
    tones = tone_corpus(tmp_path / "data", n_train=12, n_valid=4, n_test=4)
    assert main(["config", "list"]) == 0 and "tiny_cpu" in capsys.readouterr().out
    assert main(["config", "new", "tiny_cpu", "-o", "my.yaml", "--set", "model.base=model",
                 "--set", f"data.train_manifest={tones['train'].relative_to(tmp_path)}",
                 "--set", "data.valid_manifest=data/valid.jsonl", "--set", "data.test_manifest=data/test.jsonl",
                 "--set", "phases.0.epochs=50"]) == 0
    assert "ready to launch" in capsys.readouterr().out
    assert main(["config", "check", "my.yaml"]) == 0
    runs = tmp_path / "runs"
    async with opened(configs_dir="configs", roots=[runs], runs=0) as pilot:
        screen = await open_form(pilot)
        assert screen.query_one("#config", Select).value == "my.yaml"  # the folder's one config, chosen
        screen.query_one("#name").value = "first"
        await pilot.press("ctrl+s")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not isinstance(pilot.app.screen, DashboardScreen):
            await pilot.pause(0.05)
        assert isinstance(pilot.app.screen, DashboardScreen), str(screen.query_one("#launch-error").render())
    run = runs / "first"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and rundir.read_status(run).get("step", 0) < 1:
            time.sleep(0.2)
        status = rundir.read_status(run)
        assert status["state"] == rundir.RUNNING and status["step"] >= 1, (run / rundir.STDOUT).read_text()[-3000:]
        assert status["source_config"] == str(tmp_path / "my.yaml")
    finally:
        sid = rundir.read_status(run).get("sid")
        if sid:
            os.killpg(sid, signal.SIGKILL)  # the test's own run: its session, started by the launcher


async def test_without_the_train_extra_the_form_says_which_extra_to_install(tmp_path, monkeypatch, opened):
    from kidconsole import extras

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(extras.EXTRAS, "train", ("kidconsole_no_such_module",))  # as on a light install
    (tmp_path / "mine.yaml").write_text("name: mine\nphases: [{name: a}]\n")
    async with opened(configs_dir="configs") as pilot:
        screen = await open_form(pilot)
        await pilot.press("ctrl+s")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "pip install" not in str(screen.query_one("#launch-error").render()):
            await pilot.pause(0.05)
        error = str(screen.query_one("#launch-error").render())
        assert "launching a run needs the train extra" in error and "pip install 'kidconsole[train]'" in error
        assert isinstance(pilot.app.screen, LaunchScreen) and len(pilot.app.views) == 2  # nothing launched
