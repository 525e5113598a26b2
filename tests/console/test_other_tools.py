"""A Hugging Face Trainer's run beside one of ours at 80x24 (the README's capture): its card, its curves
overlaid on ours, its every other series (m), its detail; stop refused with the tool's name."""

from __future__ import annotations

import shutil

from kidconsole.tui.replay import Replay
from kidconsole.tui.screens.charts import ChartsScreen
from kidconsole.tui.screens.confirm import ConfirmScreen

from .conftest import RECORDINGS  # noqa: TID252

HF_RUN = "phase1_full_r32"  # tests/console/make_recordings.py: record_hf


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def hf_beside_ours(root):
    Replay(RECORDINGS / "r16-lr3e-4", root / "r16-lr3e-4", start=10**9)
    shutil.copytree(RECORDINGS / HF_RUN, root / HF_RUN, copy_function=shutil.copy)  # new files: it trains
    return root


async def test_a_trainer_run_sits_beside_ours_and_overlays_in_the_charts(tmp_path, opened):
    async with opened(roots=[hf_beside_ours(tmp_path / "runs")]) as pilot:
        app = pilot.app
        text = screen_text(app)
        for line in ("phase1_full_r32", "epoch 1.30/3", "step 2,600/6,000", "steps/s", "GPUs unknown",
                     "PER    26.09%     best 26.09% @2,500", "eval share 29%  38s/eval", "raise eval_steps",
                     "HF Trainer ● running", "r16-lr3e-4"):
            assert line in text, line
        await pilot.press("c", "3")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ChartsScreen)
        text = screen_text(app)
        assert "PER  ■ phase1_full_r32  ■ r16-lr3e-4" in text and "2 all runs" in text
        await pilot.press("m")  # the series no other chart draws: the Trainer's eval runtime among them
        seen = set()
        for _ in range(12):
            await pilot.pause(0.1)
            seen.add(app.screen.more)
            await pilot.press("m")
        assert {"eval/runtime", "train/epoch", "eval/eval_share"} <= seen


async def test_the_console_refuses_to_stop_or_export_a_trainer_run_and_shows_its_checkpoints(tmp_path, opened):
    async with opened(roots=[hf_beside_ours(tmp_path / "runs")]) as pilot:
        app = pilot.app
        said = []
        app.notify = lambda message, **kw: said.append(message)
        first = app.screen.focused
        assert first is not None and first.view.name == HF_RUN  # by name: it sorts first
        await pilot.press("x")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        assert said and "a run written by the Hugging Face Trainer (hf): kidconsole reads it where it lies and " \
                         "cannot stop it; stop it with the Hugging Face Trainer" in said[-1]
        await pilot.press("enter", "4")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "checkpoint-1000" in text and "checkpoint-2000" in text
        await pilot.press("o")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen) and "cannot export it" in said[-1]


async def test_the_errors_screen_works_on_a_trainer_run_where_predictions_exist(tmp_path, opened):
    import json

    from kidconsole.tui.screens.errors import ErrorsScreen

    root = hf_beside_ours(tmp_path / "runs")
    refs = ["G A | N A", "D A M | S O", "I U | EO G"]
    with open(root / HF_RUN / "predictions.jsonl", "w") as fh:  # its checkpoint scored into its folder
        for i in range(30):
            ref = refs[i % 3]
            fh.write(json.dumps({"id": f"u{i}", "speaker": f"s{i % 6}", "age": 5 + i % 6, "snr": 20.0,
                                 "duration": 2.0, "split": "test", "ref": ref,
                                 "hyp": ref if i % 4 else ref.replace("A", "O")}) + "\n")
    async with opened(roots=[root]) as pilot:
        app = pilot.app
        assert app.screen.focused.view.name == HF_RUN and app.screen.focused.view.has_predictions
        await pilot.press("e")
        for _ in range(40):
            await pilot.pause(0.1)
            if isinstance(app.screen, ErrorsScreen) and "30" in screen_text(app):
                break
        assert isinstance(app.screen, ErrorsScreen)
        assert "phase1_full_r32" in screen_text(app)
