import json

import numpy as np
import pytest
from rich.style import Style
from textual.app import App
from textual.widgets import DataTable, Static

from kidconsole import palette
from kidconsole.report.render import interval_text
from kidconsole.tui.screens.errors import ConfusionScreen, DecodeScreen, ErrorsScreen, UtterancesScreen
from kidconsole.tui.widgets.aligned_decode import AlignedDecode
from kidconsole.tui.widgets.confusion import ConfusionMatrix

class ErrorsApp(App):
    def __init__(self, source, references=()):
        super().__init__()
        self.source, self.references = source, references

    def on_mount(self) -> None:
        self.push_screen(ErrorsScreen(self.source, self.references))


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
        utts = await loaded(pilot)
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
        conf = await loaded(pilot)
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
        utts = await loaded(pilot)
        assert isinstance(utts, UtterancesScreen)
        assert utts.query_one("#utts", DataTable).row_count == len(utts.members) > 0
        ref_id, hyp_id = matrix.conf.labels[i], matrix.conf.labels[j]
        a = utts.report.analysis
        for u in utts.members:  # each listed utterance holds that error
            pairs = [(r, h) for op, r, h in __import__("kidconsole.report.summary", fromlist=["aligned"]).aligned(a, u)]
            assert (ref_id if ref_id != "∅" else None, hyp_id if hyp_id != "∅" else None) in pairs
        await pilot.press("escape", "escape")
        assert app.screen is screen


async def test_a_comparison_shows_run_minus_reference_and_both_sides_of_the_phones(run_dir, tmp_path, make_rows,
                                                                                  write_jsonl):
    baseline = write_jsonl(tmp_path / "baseline.jsonl", make_rows(40, err=0.6, hyp_seed=3))
    app = ErrorsApp(run_dir, [baseline])
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await loaded(pilot)
        assert screen.reference == baseline and screen.report.name == "lora-a"
        table = screen.query_one("#errors-buckets", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[-4:-2] == ["PER baseline", "Δ"]
        c = screen.report.comparison
        assert (c.name, c.reference) == ("lora-a", "baseline")
        overall = c.deltas[0]
        assert overall.delta == overall.rate - overall.reference < 0  # the run makes fewer errors: negative
        for row in range(table.row_count):
            cells = table.get_row_at(row)
            d = next(d for d in c.deltas if d.dimension == "age_group" and d.label == cells[0] and d.metric == "per")
            if d.n:
                assert cells[-3].plain == f"{100 * d.delta:+.2f}" and d.delta < 0
                assert cells[-3].style == (palette.BETTER if d.significant else "dim")
                assert cells[-2].plain == interval_text(d)
                if d.speakers == 1:
                    assert cells[-2].plain == "n/a (1 speaker)"
            assert cells[2].plain.endswith("low") == (0 < int(cells[2].plain.split()[0]) < 5)
        text = "\n".join(strip.text for strip in screen._compositor.render_strips())
        lines = text[text.index("Weakest phones"):].splitlines()
        assert "Weakest phones" in text and "By position" in text
        assert sum("lora-a" in line for line in lines) == 2 and sum("baseline" in line for line in lines) == 2


async def test_the_screen_takes_a_reference_only_from_the_same_test_set_and_shows_a_bad_source(run_dir, tmp_path,
                                                                                               make_rows, write_jsonl):
    from kidconsole.config import dump_config, resolve_config

    other = tmp_path / "other"
    other.mkdir()
    write_jsonl(other / "predictions.jsonl", make_rows(40, err=0.3, hyp_seed=3))
    cfg = resolve_config({"model": {"base": "/m/base"}, "phases": [{"max_steps": 1}],
                          "data": {"train_manifest": "/m/train.jsonl", "valid_manifest": "/m/valid.jsonl",
                                   "test_manifest": "/m/adults.jsonl"}}, "config.yaml", other, check_paths=False)
    (other / "config.yaml").write_text(dump_config(cfg))
    app = ErrorsApp(run_dir, [run_dir, other])  # itself and a run on another test set: no reference
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await loaded(pilot)
        assert screen.reference is None and screen.report.comparison is None
        assert "Δ" not in [str(c.label) for c in screen.query_one("#errors-buckets", DataTable).columns.values()]
    app = ErrorsApp(tmp_path / "missing")
    async with app.run_test() as pilot:
        screen = await loaded(pilot)
        assert screen.report is None and "no such run directory" in screen.error
        await pilot.press("enter", "c", "right")  # nothing to open; no crash
        assert app.screen is screen


async def test_the_aligned_decode_shows_the_forced_alignment_of_its_utterance_when_the_run_has_one(run_dir):
    from kidconsole.tui.widgets.aligned_phones import AlignedPhones

    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    lines = [json.dumps({"alignments_of": {"model": "m", "manifest": "x"}})]
    for r in rows[:-1]:  # the last utterance was never aligned
        phones = [{"phone": p, "start": round(0.1 * k, 3), "end": round(0.1 * k + 0.08, 3), "posterior": 0.9,
                   "gop": -1.5 if k == 0 else 2.0} for k, p in enumerate(r["ref"].split())]
        lines.append(json.dumps({"id": r["id"], "ref": r["ref"], "score": -0.2, "gap": 0.05, "phones": phones}))
    lines.append('{"id": "[bold red]markup[/]", "phones": "not a list"}')  # read as text, never rendered
    (run_dir / "alignments.jsonl").write_text("\n".join(lines) + "\n")
    app = ErrorsApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("enter")
        utts = await loaded(pilot)
        await pilot.press("enter")
        decode = await loaded(pilot)
        assert isinstance(decode, DecodeScreen)
        shown = decode.query_one(AlignedDecode).utt_id
        aligned = decode.query_one(AlignedPhones)
        assert aligned.alignment["id"] == shown
        text = aligned._content().plain
        first = rows[[r["id"] for r in rows].index(shown)]["ref"].split()[0]
        assert "forced alignment of the reference" in text and f"{first}?" in text and "0.00" in text
        assert "1 doubted" in text
        last = rows[-1]["id"]
        position = [utts.report.analysis.rows[int(i)].id for i in utts.order].index(last) \
            if last in [utts.report.analysis.rows[int(i)].id for i in utts.order] else None
        if position is not None:  # an utterance without an alignment shows the decode alone
            decode.position = position
            await decode.show()
            await pilot.pause()
            assert not decode.query(AlignedPhones)
        assert screen is not None


def test_a_giant_line_in_the_alignments_is_passed_over_without_being_held_whole(tmp_path):
    import io

    from kidconsole.jsonl import bounded_lines
    from kidconsole.report.alignments import AlignmentIndex

    giant = b'{"id": "big", "phones": [' + b"0," * (3 << 20) + b"0]}\n"
    text = b'{"alignments_of": {}}\n' + giant + b'{"id": "u1", "phones": [{"phone": "A"}]}\n'
    lines = list(bounded_lines(io.BytesIO(text), 1 << 20))
    assert [raw is None for _, raw in lines] == [False, True, False] and lines[2][0] == len(text) - len(lines[2][1])
    (tmp_path / "alignments.jsonl").write_bytes(text)
    index = AlignmentIndex(tmp_path / "alignments.jsonl")
    assert set(index.offsets) == {"u1"} and index.get("u1")["phones"][0]["phone"] == "A" and index.get("big") is None
