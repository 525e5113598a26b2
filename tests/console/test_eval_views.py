"""Pilot tests: evaluation cost and PER by age on the cards, the charts and run detail; baseline cards."""

from __future__ import annotations

import json

from kidconsole import rundir
from kidconsole.tui.screens.charts import PANELS, ChartsScreen, bucket_order
from kidconsole.tui.screens.run_detail import RunDetailScreen
from kidconsole.tui.widgets.chart import Chart
from kidconsole.tui.widgets.run_card import RunCard

AGE_PANEL = str(next(i for i, p in enumerate(PANELS) if p.buckets) + 1)


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def card_texts(app) -> dict[str, str]:
    return {c.view.name: str(c.render()) for c in app.screen.query(RunCard)}


async def test_cards_show_the_eval_share_and_what_to_change_past_the_threshold(opened):
    async with opened() as pilot:
        text = screen_text(pilot.app)
        # recorded: 42 s per evaluation every 500 steps, 24% of the wall time (the reference's pain)
        assert "eval share 24%  42s/eval  4m12s left" in text and "eval share 22%" in text
        assert "raise train.eval_every" in text and "or lower data.valid_utterances" in text
        cards = card_texts(pilot.app)
        assert "worst age <5  PER 32.89%" in cards["r16-lr3e-4"]  # the youngest group lags the most


async def test_below_the_threshold_the_card_gives_no_advice(opened):
    async with opened(eval_share_warn=0.3) as pilot:
        text = screen_text(pilot.app)
        assert "eval share 24%" in text and "train.eval_every" not in text


def _scoring_run(root, name="base-model"):
    run = root / name
    rundir.update_status(run, name=name, state=rundir.FINISHED, trainer_module=rundir.SCORER, gpus=[0], step=0,
                         started_at=1.0, ended_at=2.0)
    ev = {"t": 2.0, "kind": "test", "step": 0, "per": 0.3667, "cer": 0.4102, "wer": 0.77, "n": 1234,
          "split": "test", "per_age": {"<5": 0.52, "5-6": 0.41, "11-17": 0.2, "unknown": 0.9}}
    (run / rundir.EVENTS).write_text(json.dumps(ev) + "\n")
    return run


async def test_a_baseline_card_shows_its_test_figures_not_dashes(runs_root, opened):
    _scoring_run(runs_root)
    async with opened(size=(120, 30), runs=3) as pilot:
        await pilot.pause(0.2)
        card = card_texts(pilot.app)["base-model"]
        assert "scored on 1,234 utterances" in card
        assert "PER 36.67%  CER 41.02%  WER 77.00%" in card
        assert "worst age <5  PER 52.00%" in card  # unknown ages are not an age group
        assert "ETA" not in card and "step" not in card and " - " not in card


async def test_the_age_chart_draws_one_runs_age_groups_or_one_group_across_runs(opened):
    async with opened() as pilot:
        app = pilot.app
        await pilot.press("c", AGE_PANEL)
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, ChartsScreen)
        chart = screen.query_one(f"#chart-{int(AGE_PANEL) - 1}", Chart)
        # both runs: the youngest group of each, in each run's colour
        assert [label for label, _ in chart.data.legend] == ["r16-lr3e-4 <5", "r32-lr1e-4 <5"]
        assert len(chart.data.traces) == 2
        await pilot.press("a")
        await pilot.pause(0.2)
        assert [label for label, _ in chart.data.legend] == ["r16-lr3e-4 5-6", "r32-lr1e-4 5-6"]
        assert "PER by age 5-6" in screen_text(app)
        # one marked run: its age groups, youngest first
        await pilot.press("escape", "space", "c", AGE_PANEL)
        await pilot.pause(0.2)
        chart = app.screen.query_one(f"#chart-{int(AGE_PANEL) - 1}", Chart)
        assert [label for label, _ in chart.data.legend] == ["<5", "5-6", "7-8", "9-10", "11-17"]
        assert len(chart.data.traces) == 5 and "PER by age of r16-lr3e-4" in screen_text(app)


def test_buckets_sort_by_their_values_with_unknown_last():
    labels = ["11-17", "unknown", "5-6", "18+", "<5", "9-10", "7-8"]
    assert sorted(labels, key=bucket_order) == ["<5", "5-6", "7-8", "9-10", "11-17", "18+", "unknown"]
    assert sorted([">=30 dB", "10-20 dB", "<10 dB"], key=bucket_order) == ["<10 dB", "10-20 dB", ">=30 dB"]


async def test_run_detail_charts_the_eval_share_against_the_threshold(opened):
    async with opened(size=(100, 30)) as pilot:
        await pilot.press("enter", "6")
        await pilot.pause(0.3)
        screen = pilot.app.screen
        assert isinstance(screen, RunDetailScreen)
        chart = screen.query_one("#cost-chart", Chart)
        run, threshold = chart.data.traces
        assert run.hi.max() == 0.243 and set(threshold.lo) == {0.2}
        assert [label for label, _ in chart.data.legend] == ["r16-lr3e-4", "threshold 20%"]
        assert "eval share 24%  42s/eval  4m12s left" in screen_text(pilot.app)
