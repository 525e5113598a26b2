import json

import numpy as np
import pytest
from rich.style import Style
from textual.app import App
from textual.widgets import DataTable, Static

from kidconsole.tui.screens.errors import ConfusionScreen, DecodeScreen, ErrorsScreen, UtterancesScreen
from kidconsole.tui.widgets.aligned_decode import AlignedDecode
from kidconsole.tui.widgets.confusion import ConfusionMatrix

class ErrorsApp(App):
    def __init__(self, source, compare=None):
        super().__init__()
        self.source, self.compare = source, compare

    def on_mount(self) -> None:
        self.push_screen(ErrorsScreen(self.source, self.compare))


def background(text):
    return Style.parse(text.style).bgcolor if isinstance(text.style, str) else text.style.bgcolor


async def loaded(pilot):
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.screen


@pytest.fixture
def run_dir(tmp_path, make_rows, write_jsonl):
    run = tmp_path / "run"
    run.mkdir()
    write_jsonl(run / "predictions.jsonl", make_rows(40))
    (run / "status.json").write_text(json.dumps({"name": "lora-a"}))
    return run


async def test_bucket_to_utterances_to_aligned_decode_and_back(run_dir):
    app = ErrorsApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        assert isinstance(screen, ErrorsScreen) and screen.report.name == "lora-a"
        table = screen.query_one("#errors-buckets", DataTable)
        assert table.row_count == len(screen.report.dimensions["age_group"])
        await pilot.press("right")  # age in years
        assert screen.dimension == "age" and table.row_count == len(screen.report.dimensions["age"])
        bucket = screen.report.dimensions["age"][0]
        await pilot.press("enter")
        utts = app.screen
        assert isinstance(utts, UtterancesScreen)
        assert utts.query_one("#utts", DataTable).row_count == bucket.n
        per = utts.report.analysis.utterance_rate()[utts.order]
        assert list(per) == sorted(per, reverse=True)  # worst first
        await pilot.press("enter")
        decode = app.screen
        assert isinstance(decode, DecodeScreen)
        await pilot.pause()
        shown = decode.query_one(AlignedDecode)
        assert shown.utt_id == utts.report.analysis.rows[int(utts.order[0])].id
        await pilot.press("n")
        await pilot.pause()
        assert decode.query_one(AlignedDecode).utt_id == utts.report.analysis.rows[int(utts.order[1])].id
        await pilot.press("escape", "escape")
        assert app.screen is screen


async def test_confusion_matrix_is_colour_scaled_and_opens_the_utterances_of_a_cell(run_dir):
    app = ErrorsApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("c")
        conf = app.screen
        assert isinstance(conf, ConfusionScreen)
        matrix = conf.query_one(ConfusionMatrix)
        labels = matrix.conf.labels
        i, j = divmod(int(matrix.share.argmax()), len(labels))  # the most confused cell
        share = matrix.share[:-1].copy()  # phone rows (the insertion row has its own scale)
        share[share == 0] = np.inf
        low = divmod(int(share.argmin()), len(labels))  # the least confused cell that is not empty
        empty = [(r, c) for r in range(len(labels)) for c in range(len(labels))
                 if r != c and matrix.conf.matrix[r, c] == 0][0]
        top_bg, low_bg = (background(matrix.get_cell_at(x)) for x in ((i, j), low))
        assert top_bg is not None and low_bg is not None and top_bg != low_bg
        assert sum(top_bg.get_truecolor()) > sum(low_bg.get_truecolor())  # hotter for a larger share
        assert background(matrix.get_cell_at(empty)) is None
        matrix.cursor_coordinate = (i, j)
        await pilot.pause()
        assert labels[i] in str(conf.query_one("#confusion-cell", Static).render())
        await pilot.press("enter")
        utts = app.screen
        assert isinstance(utts, UtterancesScreen)
        assert utts.query_one("#utts", DataTable).row_count == len(utts.members) > 0
        await pilot.press("escape", "escape")
        assert app.screen is screen


async def test_a_comparison_shows_deltas_and_a_bad_source_shows_its_error(run_dir, tmp_path, make_rows, write_jsonl):
    other = write_jsonl(tmp_path / "b.jsonl", make_rows(40, err=0.05, hyp_seed=3))
    app = ErrorsApp(run_dir, other)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await loaded(pilot)
        table = screen.query_one("#errors-buckets", DataTable)
        assert "Δ" in [str(c.label) for c in table.columns.values()]
    app = ErrorsApp(tmp_path / "missing")
    async with app.run_test() as pilot:
        screen = await loaded(pilot)
        assert screen.report is None and "no such run directory" in screen.error
        await pilot.press("enter", "c", "right")  # nothing to open; no crash
        assert app.screen is screen
