"""Error drill-down: buckets -> their utterances (worst first) -> the aligned
decode, and a phone confusion matrix (``c``) for all utterances or a bucket.

The figures come from ``kidconsole.report`` and are computed on thread workers
(a report of 100,000 utterances takes seconds, a bucket's ordering or a
confusion matrix a moment): the screens only render them. With a reference
(a baseline, or another run), each bucket shows the reference's PER and the
delta, run minus reference: negative is better. Every level goes back with
``escape``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from kidconsole import palette
from kidconsole.errors import KidconsoleError
from kidconsole.report.compute import MIN_SPEAKERS
from kidconsole.report.phonemes import EPS
from kidconsole.report.render import interval_text, pct, speakers_text
from kidconsole.shown import markup, text
from kidconsole.tui.screens.pushed import PushedScreen

DIMENSION_ORDER = ("age_group", "age", "snr", "duration", "gender", "speaker")
MAX_ROWS = 5000  # utterances listed per bucket (worst first); a longer list only slows the table
WEAKEST_SHOWN = 8


def _opt(x, fmt: str = "{:g}") -> str:
    return "—" if x is None else fmt.format(x)


def _speakers(n: int, low: bool) -> Text:
    return Text(speakers_text(n, low), style=palette.WARNING if low else "")


def sides_table(rep) -> Group:
    """The weakest phones and the errors by position in the word: the run's, and the reference's below."""
    from kidconsole.report.summary import position_sides, weakest_sides

    names = [rep.name] + ([rep.reference.name] if rep.reference else [])

    def grid(title: str, heads: list[str], cells: list[list[str]]) -> Table:
        table = Table.grid(padding=(0, 0, 0, 2))
        table.add_column(no_wrap=True, min_width=16, max_width=18, overflow="ellipsis")
        for _ in heads:
            table.add_column(justify="right", no_wrap=True)
        table.add_row(Text(title, style="bold"), *(text(h, "bold") for h in heads))
        for name, row in zip(names, cells):
            table.add_row(text(f"  {name}"), *map(text, row))
        return table

    weak = weakest_sides(rep, WEAKEST_SHOWN)
    sides = position_sides(rep)
    n = range(len(names))
    return Group(
        grid("Weakest phones", [p for p, _, _ in weak], [[pct(r[1 + side]) for r in weak] for side in n]),
        grid("By position", [p.position for p, _ in sides],
             [[f"{pct(q.error_rate)} del {pct(q.deletion_rate)}" if q else "—"
               for q in (pair[side] for pair in sides)] for side in n]))


def head_text(rep) -> Text:
    """Two lines: the run's overall figures; what it is compared against and how to read the table."""
    o = rep.overall
    head = Text.assemble(text(rep.name, "bold"), f"  {rep.n} utts, {o.speakers} spk  PER {pct(o.rate('per'))}  ")
    if rep.analysis.has_cer:
        head.append(f"CER {pct(o.rate('cer'))}  ")
    head.append(f"WER {pct(o.rate('wer'))}  macro PER {pct(rep.macro['per'])}")
    if rep.skipped:
        head.append(f"  {len(rep.skipped)} lines skipped", style=palette.WARNING)
    notes = []
    if rep.comparison:
        c = rep.comparison
        notes.append(Text.assemble("vs ", text(c.reference, "bold"),
                                   text(f": Δ = run − {c.reference}, negative is better")))
    if any(b.low_confidence for bs in rep.dimensions.values() for b in bs):
        notes.append(Text(f"low: under {MIN_SPEAKERS} speakers", style=palette.WARNING))
    if notes:
        head.append("\n")
        head.append(Text(" · ").join(notes))
    return head


class ErrorsScreen(PushedScreen):
    """Per-bucket error rates of a run (its ``predictions.jsonl``) or of a predictions file; with
    ``references`` (run directories), the first scored on the same test manifest is the reference: each
    bucket's PER delta against it (run minus reference) and its confidence interval."""

    TITLE = "Errors"
    DEFAULT_CSS = """
    ErrorsScreen #errors-head { height: auto; }
    ErrorsScreen #errors-buckets { height: 1fr; }
    ErrorsScreen #errors-dims { height: 1; margin: 1 0 0 0; }
    ErrorsScreen #errors-phones { height: auto; padding: 0 1; border-top: solid $panel; }
    """
    BINDINGS = [
        Binding("right,d", "dimension(1)", "Next dimension", key_display="→/d"),
        Binding("left", "dimension(-1)", "Prev dimension", key_display="←"),
        Binding("enter", "open", "Utterances", show=True),
        Binding("c", "confusion", "Confusions"),
    ]

    def __init__(self, source: str | Path, references: Sequence[str | Path] = ()):
        super().__init__()
        self.source = Path(source)
        self.references = [Path(r) for r in references]
        self.reference: Path | None = None  # the one picked, once the report is loaded
        self.report = None
        self.error: str | None = None
        self.dim_index = 0
        self._shown: list = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Computing the error report…", id="errors-head", classes="screen-head")
        yield Static("", id="errors-dims")
        yield DataTable(id="errors-buckets", cursor_type="row", zebra_stripes=True)
        yield Static("", id="errors-phones")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#errors-buckets", DataTable).loading = True
        self.load()

    @work(thread=True, exclusive=True, group="errors-report")
    def load(self) -> None:
        from kidconsole.report.summary import pick_reference, report_for

        try:
            reference = pick_reference(self.source, self.references) if self.references else None
            rep = report_for(self.source, reference, n_boot=500)
        except KidconsoleError as e:
            self.app.call_from_thread(self._failed, str(e))
        else:
            self.app.call_from_thread(self._loaded, rep, reference)

    def _failed(self, message: str) -> None:
        self.error = message
        table = self.query_one("#errors-buckets", DataTable)
        table.loading = False
        self.query_one("#errors-head", Static).update(text(message, palette.ERROR, lines=True))

    def _loaded(self, rep, reference: Path | None) -> None:
        self.report, self.reference = rep, reference
        self.query_one("#errors-buckets", DataTable).loading = False
        self.query_one("#errors-head", Static).update(head_text(rep))
        self.query_one("#errors-phones", Static).update(sides_table(rep))
        self.show_dimension()
        self.query_one("#errors-buckets", DataTable).focus()

    @property
    def dimension(self) -> str:
        return DIMENSION_ORDER[self.dim_index]

    def show_dimension(self) -> None:
        from kidconsole.report.buckets import TITLES

        rep = self.report
        dims = Text()
        for i, d in enumerate(DIMENSION_ORDER):
            dims.append(f" {TITLES[d]} ", style="reverse bold" if i == self.dim_index else "dim")
        self.query_one("#errors-dims", Static).update(dims)
        table = self.query_one("#errors-buckets", DataTable)
        table.clear(columns=True)
        metrics = ("per", "cer", "wer") if rep.analysis.has_cer else ("per", "wer")
        cols = ["bucket", "utts", "spk"] + [m.upper() for m in metrics] + ["sub%", "del%", "ins%"]
        deltas = {}
        if rep.comparison:
            c = rep.comparison
            cols += [markup(f"PER {c.reference}"), "Δ", f"{100 * c.level:g}% CI", ""]
            deltas = {d.label: d for d in c.deltas if d.dimension == self.dimension and d.metric == "per"}
        table.add_columns(*cols)
        buckets = rep.dimensions[self.dimension]
        if self.dimension == "speaker":  # worst speakers first
            buckets = sorted(buckets, key=lambda b: -b.rate())
        for k, b in enumerate(buckets):
            row = [markup(b.label), str(b.n), _speakers(b.speakers, b.low_confidence)] + \
                  [pct(b.rate(m)) for m in metrics] + [pct(b.op_rate(op)) for op in (1, 2, 3)]
            if rep.comparison:
                d = deltas.get(b.label)
                if d is None:
                    row += ["—"] * 4
                else:
                    style = palette.BETTER if d.significant and d.delta < 0 else \
                        palette.WORSE if d.significant else "dim"
                    row += [pct(d.reference), Text(f"{100 * d.delta:+.2f}" if d.n else "—", style=style),
                            Text(interval_text(d), style=palette.WARNING if d.low_confidence else ""),
                            "*" if d.significant else ""]
            table.add_row(*row, key=str(k))
        self._shown = buckets

    def action_dimension(self, step: int) -> None:
        if self.report is None:
            return
        self.dim_index = (self.dim_index + step) % len(DIMENSION_ORDER)
        self.show_dimension()

    def _current_bucket(self):
        table = self.query_one("#errors-buckets", DataTable)
        if self.report is None or not table.row_count:
            return None
        return self._shown[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        b = self._current_bucket()
        if b is None:
            return
        if not b.n:
            self.notify(f"{b.label}: no utterances in this bucket")
            return
        from kidconsole.report.buckets import TITLES

        members = b.members
        self.app.push_screen(UtterancesScreen(self.report, f"{TITLES[self.dimension]} {b.label}", lambda: members))

    def action_confusion(self) -> None:
        if self.report is not None:
            self.app.push_screen(ConfusionScreen(self.report, "all utterances", None))


class UtterancesScreen(PushedScreen):
    """Some utterances (``select()`` gives them, on a worker), worst PER first."""

    TITLE = "Utterances"
    DEFAULT_CSS = "UtterancesScreen #utts { height: 1fr; }"
    BINDINGS = [
        Binding("enter", "open", "Aligned decode", show=True),
        Binding("c", "confusion", "Confusions"),
    ]

    def __init__(self, report, title: str, select: Callable[[], np.ndarray]):
        super().__init__()
        self.report = report
        self.title_text = title
        self.select = select
        self.members: np.ndarray | None = None  # once the worker has them
        self.order: np.ndarray | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text.assemble(text(self.title_text, "bold"), ": finding the utterances…"), id="utts-head",
                     classes="screen-head")
        yield DataTable(id="utts", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#utts", DataTable)
        table.add_columns("id", "speaker", "age", "SNR", "dur", "PER", "S", "D", "I", "phones")
        table.loading = True
        self.load()

    @work(thread=True, exclusive=True, group="utterances")
    def load(self) -> None:
        from kidconsole.report.compute import D, I, S, rates, worst

        a = self.report.analysis
        members = np.asarray(self.select())
        order = worst(a, members, MAX_ROWS)
        c = a.counts[order, 0]
        per = rates(c)
        rows = []
        for k, i in enumerate(order):
            r = a.rows[i]
            rows.append((markup(r.id), markup(r.speaker or "—"), _opt(r.age_years), _opt(r.snr, "{:.1f}"), _opt(r.duration, "{:.1f}"),
                         pct(per[k]), str(c[k, S]), str(c[k, D]), str(c[k, I]), str(c[k, 0] + c[k, S] + c[k, D])))
        self.app.call_from_thread(self._loaded, members, order, rows)

    def _loaded(self, members: np.ndarray, order: np.ndarray, rows: list[tuple]) -> None:
        self.members, self.order = members, order
        shown = f" (worst {len(order)})" if len(order) < len(members) else ""
        self.query_one("#utts-head", Static).update(
            Text.assemble(text(self.title_text, "bold"), f": {len(members)} utterances{shown}, worst first"))
        table = self.query_one("#utts", DataTable)
        for k, row in enumerate(rows):
            table.add_row(*row, key=str(k))
        table.loading = False
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        table = self.query_one("#utts", DataTable)
        if self.order is not None and table.row_count:
            self.app.push_screen(DecodeScreen(self.report, self.order, table.cursor_row))

    def action_confusion(self) -> None:
        if self.members is not None:
            self.app.push_screen(ConfusionScreen(self.report, self.title_text, self.members))


class DecodeScreen(PushedScreen):
    """One utterance's aligned decode; ``n``/``p`` step through its list. When the run has forced
    alignments (``kidconsole align RUN MANIFEST``: RUN/alignments.jsonl), the aligned reference with each
    phone's time and posterior is shown under the decode (the file is indexed on a worker)."""

    TITLE = "Aligned decode"
    BINDINGS = [
        Binding("n,down", "step(1)", "Next"),
        Binding("p,up", "step(-1)", "Previous"),
    ]

    def __init__(self, report, order: np.ndarray, position: int):
        super().__init__()
        self.report = report
        self.order = order
        self.position = position
        self.alignments = None  # kidconsole.report.alignments.AlignmentIndex, once indexed

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="decode-head", classes="screen-head")
        yield VerticalScroll(id="decode-body")
        yield Footer()

    async def on_mount(self) -> None:
        await self.show()
        self.index_alignments()

    @work(thread=True, exclusive=True, group="alignments")
    def index_alignments(self) -> None:
        from kidconsole.report.alignments import load_index

        index = load_index(self.report.path)
        if index is not None:
            self.app.call_from_thread(self._indexed, index)

    async def _indexed(self, index) -> None:
        self.alignments = index
        await self.show()

    @property
    def index(self) -> int:
        return int(self.order[self.position])

    async def show(self) -> None:
        from kidconsole.tui.widgets.aligned_decode import AlignedDecode

        r = self.report.analysis.rows[self.index]
        self.query_one("#decode-head", Static).update(Text.assemble(
            (f"{self.position + 1}/{len(self.order)}  ", "dim"), text(r.id, "bold"),
            text(f"  speaker {r.speaker or '—'}"), f"  age {_opt(r.age_years)}  SNR {_opt(r.snr, '{:.1f}')} dB"
            f"  {_opt(r.duration, '{:.2f}')} s"))
        body = self.query_one("#decode-body", VerticalScroll)
        await body.remove_children()
        await body.mount(AlignedDecode(r.id, r.ref, r.hyp))
        alignment = self.alignments.get(r.id) if self.alignments is not None else None
        if alignment is not None:
            from kidconsole.tui.widgets.aligned_phones import AlignedPhones

            await body.mount(AlignedPhones(alignment))

    async def action_step(self, step: int) -> None:
        new = min(max(self.position + step, 0), len(self.order) - 1)
        if new != self.position:
            self.position = new
            await self.show()


class ConfusionScreen(PushedScreen):
    """The confusion matrix of some utterances (computed on a worker); ``enter`` lists those with the
    highlighted error."""

    TITLE = "Confusions"
    BINDINGS = [
        Binding("enter", "open", "Utterances with this error", show=True),
    ]
    DEFAULT_CSS = "ConfusionScreen #confusion-box { height: 1fr; }"

    def __init__(self, report, title: str, members: np.ndarray | None):
        super().__init__()
        self.report = report
        self.title_text = title
        self.members = members
        self.conf = None  # once the worker has it

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text.assemble(("Confusions: ", "bold"), text(self.title_text),
                                   ("   rows: reference, columns: hypothesis, ∅: deletion/insertion", "dim")),
                     classes="screen-head")
        yield Vertical(id="confusion-box")
        yield Static("", id="confusion-cell")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#confusion-box").loading = True
        self.load()

    @work(thread=True, exclusive=True, group="confusion")
    def load(self) -> None:
        from kidconsole.report.phonemes import confusion

        self.app.call_from_thread(self._loaded, confusion(self.report.analysis, self.members))

    async def _loaded(self, conf) -> None:
        from kidconsole.tui.widgets.confusion import ConfusionMatrix

        self.conf = conf
        box = self.query_one("#confusion-box")
        box.loading = False
        matrix = ConfusionMatrix(conf, id="confusion")
        await box.mount(matrix)
        matrix.focus()

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        ref, hyp, n, share = self.query_one("#confusion").cell_info(*event.coordinate)
        what = ("hits" if ref == hyp else "deleted" if hyp == EPS else "inserted" if ref == EPS
                else "heard as " + hyp)
        line = Text.assemble(text(ref, "bold"), text(f" {what}: {n}"))
        if not math.isnan(share):
            line.append(text(f" ({pct(share)}% of {ref})"))
        self.query_one("#confusion-cell", Static).update(line)

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        from kidconsole.report.phonemes import utterances_with

        if self.conf is None:
            return
        matrix = self.query_one("#confusion")
        ref, hyp, n, _ = matrix.cell_info(*matrix.cursor_coordinate)
        if ref == hyp or not n:
            return
        a, members = self.report.analysis, self.members
        self.app.push_screen(UtterancesScreen(self.report, f"{self.title_text}: {ref} → {hyp}",
                                              lambda: utterances_with(a, ref, hyp, members)))
