"""The console's building blocks: smoothing, colours, the chart renderer, aligned decodes, the watcher."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from kidconsole.runs.reader import RunReader
from kidconsole.runs.series import Series
from kidconsole.palette import RUN_COLORS
from kidconsole.tui.colors import ColorBook
from kidconsole.tui.smoothing import DebiasedEma
from kidconsole.tui.watcher import Watcher
from kidconsole.tui.widgets.aligned_decode import aligned_columns, aligned_lines, error_summary
from kidconsole.tui.widgets.chart import ChartData, Trace, plot_columns, render_chart


def debiased_ema(xs, w):
    return DebiasedEma(w).extend(xs)


def reference_ema(xs, w):
    s, out = 0.0, []
    for i, v in enumerate(xs, 1):
        s = w * s + (1 - w) * v
        out.append(s / (1 - w ** i))
    return np.array(out)


@pytest.mark.parametrize("weight", [0.3, 0.9, 0.99, 0.999])
def test_debiased_ema_matches_the_textbook_recursion(weight):
    xs = np.random.default_rng(0).normal(1.0, 0.3, 9000)
    assert np.allclose(debiased_ema(xs, weight), reference_ema(xs, weight), rtol=0, atol=1e-12)


def test_debiased_ema_starts_on_the_data_not_at_zero():
    assert debiased_ema(np.array([2.5, 2.5, 2.5]), 0.99).tolist() == pytest.approx([2.5, 2.5, 2.5])


def test_debiased_ema_extended_in_pieces_equals_one_pass_and_skips_nan():
    xs = np.random.default_rng(1).random(5000)
    xs[[10, 777]] = np.nan
    ema = DebiasedEma(0.95)
    pieces = np.concatenate([ema.extend(xs[:100]), ema.extend(xs[100:101]), ema.extend(xs[101:])])
    whole = debiased_ema(xs, 0.95)
    assert np.isnan(pieces[10]) and np.isnan(whole[777])
    finite = np.isfinite(xs)
    assert np.allclose(pieces[finite], whole[finite])
    assert np.allclose(whole[finite], reference_ema(xs[finite], 0.95))


def test_run_colours_are_stable_across_sessions_and_distinct_within_one():
    names = [f"run-{i}" for i in range(6)]
    a, b = ColorBook(), ColorBook()
    a.assign(names)
    b.assign(list(reversed(names)))
    assert [a[n] for n in names] == [b[n] for n in names]
    assert len({a[n] for n in names}) == len(names)
    assert all(a[n] in RUN_COLORS for n in names)


def test_chart_fills_its_size_and_keeps_a_single_spike_visible():
    steps = np.arange(1_000_000)
    spike = Series(steps, np.where(steps == 500_000, 50.0, 1.0))
    xs, lo, hi = spike.downsample(plot_columns(80))
    data = ChartData([Trace(xs, lo, hi, RUN_COLORS[0])], x_kind="step", x_range=(0, 999_999))
    lines = render_chart(data, "loss", 80, 20)
    assert len(lines) == 20 and all(line.cell_length == 80 for line in lines)
    text = [line.text for line in lines]
    assert text[1].lstrip().startswith("50")  # the y axis reaches the spike
    assert any(ch != " " for ch in text[1][8:])  # and the spike is drawn at the top row
    assert text[-1].split()[-1] == "1M" and "└0 " in text[-1]


def test_chart_log_scale_drops_non_positive_values_and_labels_powers():
    xs = np.arange(10.0)
    ys = np.array([0.0, 1, 10, 100, 1000, 1, 1, 1, 1, 1])
    lines = render_chart(ChartData([Trace(xs, ys, ys, RUN_COLORS[1])], log_y=True), "lr", 60, 12)
    text = [line.text for line in lines]
    assert text[1].lstrip().startswith("1.0k") and text[-2].lstrip().startswith("1┤")


def test_chart_without_data_says_so():
    lines = render_chart(ChartData(), "PER", 60, 10)
    assert any("no data yet" in line.text for line in lines)


def test_aligned_decode_marks_each_error_kind_and_stays_aligned_when_wrapped():
    ref, hyp = "H A N | G U G EO | M A L", "H E N | G U EO | M A L S"
    cols = aligned_columns(ref, hyp)
    ops = [op for op, _, _ in cols]
    assert ops.count("substitute") == 1 and ops.count("delete") == 1 and ops.count("insert") == 1
    assert error_summary(ref, hyp) == (1, 1, 1, 10)
    lines = aligned_lines(ref, hyp, 14)
    assert len(lines) % 2 == 0 and len(lines) > 2
    for r, h in zip(lines[::2], lines[1::2]):
        # every aligned cell starts in the same column on both lines
        r_starts = [i for i, c in enumerate(r.plain) if c != " " and (i == 0 or r.plain[i - 1] == " ")]
        h_starts = [i for i, c in enumerate(h.plain) if c != " " and (i == 0 or h.plain[i - 1] == " ")]
        assert r_starts == h_starts


class Collector:
    """A message target standing in for the app: records what the watcher posts."""

    def __init__(self):
        self.messages = []
        self.got = threading.Event()

    def post_message(self, message):
        self.messages.append(message)
        self.got.set()


def test_watcher_posts_each_round_the_runs_change_and_nothing_while_they_do_not(growing_run, fixed_now, fake_system):
    root, replay = growing_run
    target = Collector()
    watcher = Watcher([str(root)], target, interval=0.01, clock=lambda: fixed_now, system=fake_system)
    watcher.start()
    try:
        assert target.got.wait(5)
        (view,) = target.messages[0].views.values()
        threading.Event().wait(0.2)
        assert len(target.messages) == 1  # nothing changed: nothing posted
        target.got.clear()
        replay.advance(replay.remaining)
        watcher.wake()
        deadline = time.monotonic() + 20  # a round takes milliseconds; seconds on a machine loaded 5x its cores
        while len(target.messages) == 1 or next(iter(target.messages[-1].views.values())).step == view.step:
            assert time.monotonic() < deadline, "no new message although the run grew"  # and nobody acknowledged
            target.got.wait(0.05)
        (latest,) = target.messages[-1].views.values()
        assert latest.step > view.step and latest.revision > view.revision
    finally:
        watcher.stop()


async def test_a_busy_ui_handles_only_the_newest_of_the_queued_run_updates():
    from textual.app import App

    from kidconsole.tui.watcher import RunsUpdated

    class Busy(App):
        handled: list = []

        def on_mount(self) -> None:
            for i in range(5):  # queued while the UI is busy in this handler
                self.post_message(RunsUpdated({"round": i}, ()))

        def on_runs_updated(self, message: RunsUpdated) -> None:
            self.handled.append(message.views["round"])

    app = Busy()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.handled == [4]


def test_the_read_api_gives_copies_that_later_rounds_do_not_change(growing_run, fixed_now, fake_system):
    root, replay = growing_run
    watcher = Watcher([str(root)], None, clock=lambda: fixed_now, system=fake_system)
    (key,) = watcher.poll_once()
    first = watcher.tail(key, "train/loss", "step", 0)
    span = watcher.span(key, "train/loss", "step")
    assert first.length == len(first.x) > 0 and span == (first.x[0], first.x[-1])
    xs, lo, hi = watcher.downsample(key, "train/loss", "step", 10, *span)
    assert 0 < len(xs) <= 10 and min(lo) == first.y.min() and max(hi) == first.y.max()
    kept = first.x.copy()
    replay.advance(replay.remaining)
    watcher.poll_once()
    more = watcher.tail(key, "train/loss", "step", first.length)
    assert more.x_before == first.x[-1] and more.length == first.length + len(more.x) > first.length
    np.testing.assert_array_equal(first.x, kept)
    assert watcher.config(key)["lora"] and len(watcher.decodes(key)) and watcher.checkpoints(key)
    assert watcher.config("no such run") == {} and watcher.span("no such run", "train/loss", "step") is None


def test_watcher_views_carry_gpu_and_best_metrics(runs_root, fixed_now, fake_system):
    watcher = Watcher([str(runs_root)], None, clock=lambda: fixed_now, system=fake_system)
    for _ in range(3):
        views = watcher.poll_once()
    by_name = {v.name: v for v in views.values()}
    r16 = by_name["r16-lr3e-4"]
    assert r16.state == "running" and r16.step == 3000 and r16.total_steps == 6000
    assert [g.index for g in r16.gpus] == [0] and r16.gpus[0].util == 93.0
    reader = RunReader(r16.path)
    reader.load_all()
    per = reader.series["eval/per"]
    assert r16.best["eval/per"] == (per.min_point()[1], int(per.min_point()[0]))
    assert r16.warnings == {"bad_sample": 4, "nonfinite_loss": 1}


def test_a_finished_run_card_shows_its_test_result(runs_root, fixed_now, fake_system):
    from kidconsole.rundir import EV_TEST, EventWriter
    from kidconsole.tui.widgets.run_card import card_text

    run = runs_root / "r16-lr3e-4"
    watcher = Watcher([str(runs_root)], None, clock=lambda: fixed_now, system=fake_system)
    before = {v.name: v for v in watcher.poll_once().values()}["r16-lr3e-4"]
    assert before.test == {} and "test PER" not in card_text(before, 48).plain
    EventWriter(run / "events.jsonl").emit(EV_TEST, step=6000, per=0.2055, cer=0.3012, wer=0.5, n=1234, split="test")
    after = {v.name: v for v in watcher.poll_once().values()}["r16-lr3e-4"]
    assert after.test == {"per": 0.2055, "cer": 0.3012, "wer": 0.5, "n": 1234}
    assert "test PER 20.55%  CER 30.12%  (1,234 utts)" in card_text(after, 48).plain


def test_console_never_imports_the_training_stack():
    code = ("import sys, kidconsole.cli, kidconsole.tui.app, kidconsole.tui.screens\n"
            "kidconsole.tui.screens.screen_classes()\n"
            "heavy = {'torch', 'transformers', 'peft', 'accelerate'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
