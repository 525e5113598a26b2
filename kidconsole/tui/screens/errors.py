"""Error drill-down: buckets -> their utterances (worst first) -> the aligned
decode, and a phone confusion matrix (``c``) for all utterances or a bucket.

The report is computed on a thread worker (100,000 utterances take seconds);
the screens only render it. Every level goes back with ``escape``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from kidconsole import palette
from kidconsole.errors import KidconsoleError

DIMENSION_ORDER = ("age_group", "age", "snr", "duration", "gender", "speaker")
MAX_ROWS = 5000  # utterances listed per bucket (worst first); a longer list only slows the table


def _pct(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def _opt(x, fmt: str = "{:g}") -> str:
    return "—" if x is None else fmt.format(x)


class ErrorsScreen(Screen):
    """Per-bucket error rates of a run (its ``predictions.jsonl``) or of a predictions file;
    with ``compare``, each bucket's PER delta against that run and its confidence interval."""

    TITLE = "Errors"
    DEFAULT_CSS = """
    ErrorsScreen #errors-buckets { height: 1fr; }
    ErrorsScreen #errors-dims { height: 1; margin: 1 0 0 0; }
    ErrorsScreen #errors-phones { height: auto; padding: 0 1; border-top: solid $panel; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("right,d", "dimension(1)", "Next dimension", key_display="→/d"),
        Binding("left", "dimension(-1)", "Prev dimension", key_display="←"),
        Binding("enter", "open", "Utterances", show=True),
        Binding("c", "confusion", "Confusions"),
    ]

    def __init__(self, source: str | Path, compare: str | Path | None = None):
        super().__init__()
        self.source = Path(source)
        self.compare_to = Path(compare) if compare is not None else None
        self.report = None
        self.error: str | None = None
        self.dim_index = 0

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
        from kidconsole.report.summary import report_for

        try:
            rep = report_for(self.source, self.compare_to, n_boot=500)
        except KidconsoleError as e:
            self.app.call_from_thread(self._failed, str(e))
        else:
            self.app.call_from_thread(self._loaded, rep)

    def _failed(self, message: str) -> None:
        self.error = message
        table = self.query_one("#errors-buckets", DataTable)
        table.loading = False
        self.query_one("#errors-head", Static).update(Text(message, style=palette.ERROR))

    def _loaded(self, rep) -> None:
        self.report = rep
        self.query_one("#errors-buckets", DataTable).loading = False
        o = rep.overall
        head = Text.assemble((rep.name, "bold"), f"  {rep.n} utterances, {o.speakers} speakers   ",
                             f"PER {_pct(o.rate('per'))}  ")
        if rep.analysis.has_cer:
            head.append(f"CER {_pct(o.rate('cer'))}  ")
        head.append(f"WER {_pct(o.rate('wer'))}   macro PER (age groups) {_pct(rep.macro['per'])}")
        if rep.skipped:
            head.append(f"   {len(rep.skipped)} lines skipped", style=palette.WARNING)
        self.query_one("#errors-head", Static).update(head)
        weak = ", ".join(f"{p.phone} {_pct(p.error_rate)}" for p in rep.weakest[:8])
        pos = ", ".join(f"{p.position} {_pct(p.error_rate)} (del {_pct(p.deletion_rate)})" for p in rep.positions)
        self.query_one("#errors-phones", Static).update(
            Text.assemble(("Weakest phones ", "bold"), weak, "\n", ("By position ", "bold"), pos))
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
            cols += [f"PER {c.name_b}", "Δ", f"{100 * c.level:g}% CI", ""]
            deltas = {d.label: d for d in c.deltas if d.dimension == self.dimension and d.metric == "per"}
        table.add_columns(*cols)
        buckets = rep.dimensions[self.dimension]
        if self.dimension == "speaker":  # worst speakers first
            buckets = sorted(buckets, key=lambda b: -b.rate())
        for k, b in enumerate(buckets):
            row = [b.label, str(b.n), str(b.speakers)] + [_pct(b.rate(m)) for m in metrics] + \
                  [_pct(b.op_rate(op)) for op in (1, 2, 3)]
            if rep.comparison:
                d = deltas.get(b.label)
                if d is None:
                    row += ["—"] * 4
                else:
                    style = palette.BETTER if d.significant and d.delta < 0 else palette.WORSE if d.significant else "dim"
                    row += [_pct(d.rate_b), Text(f"{100 * d.delta:+.2f}" if d.n else "—", style=style),
                            f"{100 * d.lo:+.2f}..{100 * d.hi:+.2f}" if d.n and not math.isnan(d.lo) else "—",
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

        self.app.push_screen(UtterancesScreen(self.report, f"{TITLES[self.dimension]} {b.label}", b.members))

    def action_confusion(self) -> None:
        if self.report is not None:
            self.app.push_screen(ConfusionScreen(self.report, "all utterances", None))


class UtterancesScreen(Screen):
    """One bucket's utterances, worst PER first."""

    TITLE = "Utterances"
    DEFAULT_CSS = "UtterancesScreen #utts { height: 1fr; }"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Aligned decode", show=True),
        Binding("c", "confusion", "Confusions"),
    ]

    def __init__(self, report, title: str, members: np.ndarray):
        super().__init__()
        from kidconsole.report.compute import worst

        self.report = report
        self.title_text = title
        self.members = np.asarray(members)
        self.order = worst(report.analysis, self.members, MAX_ROWS)

    def compose(self) -> ComposeResult:
        yield Header()
        shown = f" (worst {len(self.order)})" if len(self.order) < len(self.members) else ""
        yield Static(Text.assemble((self.title_text, "bold"), f": {len(self.members)} utterances{shown}, worst first"),
                     id="utts-head", classes="screen-head")
        yield DataTable(id="utts", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        from kidconsole.report.compute import D, I, S, rates

        a = self.report.analysis
        table = self.query_one("#utts", DataTable)
        table.add_columns("id", "speaker", "age", "SNR", "dur", "PER", "S", "D", "I", "phones")
        c = a.counts[self.order, 0]
        per = rates(c)
        for k, i in enumerate(self.order):
            r = a.rows[i]
            table.add_row(r.id, r.speaker or "—", _opt(r.age_years), _opt(r.snr, "{:.1f}"),
                          _opt(r.duration, "{:.1f}"), _pct(per[k]), str(c[k, S]), str(c[k, D]), str(c[k, I]),
                          str(c[k, 0] + c[k, S] + c[k, D]), key=str(k))
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        table = self.query_one("#utts", DataTable)
        if table.row_count:
            self.app.push_screen(DecodeScreen(self.report, self.order, table.cursor_row))

    def action_confusion(self) -> None:
        self.app.push_screen(ConfusionScreen(self.report, self.title_text, self.members))


class DecodeScreen(Screen):
    """One utterance's aligned decode; ``n``/``p`` step through its bucket's list."""

    TITLE = "Aligned decode"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n,down", "step(1)", "Next"),
        Binding("p,up", "step(-1)", "Previous"),
    ]

    def __init__(self, report, order: np.ndarray, position: int):
        super().__init__()
        self.report = report
        self.order = order
        self.position = position

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="decode-head", classes="screen-head")
        yield VerticalScroll(id="decode-body")
        yield Footer()

    async def on_mount(self) -> None:
        await self.show()

    @property
    def index(self) -> int:
        return int(self.order[self.position])

    async def show(self) -> None:
        from kidconsole.tui.widgets.aligned_decode import AlignedDecode

        r = self.report.analysis.rows[self.index]
        self.query_one("#decode-head", Static).update(Text.assemble(
            (f"{self.position + 1}/{len(self.order)}  ", "dim"), (r.id, "bold"),
            f"  speaker {r.speaker or '—'}  age {_opt(r.age_years)}  SNR {_opt(r.snr, '{:.1f}')} dB"
            f"  {_opt(r.duration, '{:.2f}')} s"))
        body = self.query_one("#decode-body", VerticalScroll)
        await body.remove_children()
        await body.mount(AlignedDecode(r.id, r.ref, r.hyp))

    async def action_step(self, step: int) -> None:
        new = min(max(self.position + step, 0), len(self.order) - 1)
        if new != self.position:
            self.position = new
            await self.show()


class ConfusionScreen(Screen):
    """The confusion matrix of some utterances; ``enter`` lists those with the highlighted error."""

    TITLE = "Confusions"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Utterances with this error", show=True),
    ]

    def __init__(self, report, title: str, members: np.ndarray | None):
        super().__init__()
        from kidconsole.report.phonemes import confusion

        self.report = report
        self.title_text = title
        self.members = members
        self.conf = confusion(report.analysis, members)

    def compose(self) -> ComposeResult:
        from kidconsole.tui.widgets.confusion import ConfusionMatrix

        yield Header()
        yield Static(Text.assemble(("Confusions: ", "bold"), self.title_text,
                                   ("   rows: reference, columns: hypothesis, ∅: deletion/insertion", "dim")),
                     classes="screen-head")
        yield ConfusionMatrix(self.conf, id="confusion")
        yield Static("", id="confusion-cell")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#confusion").focus()

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        ref, hyp, n, share = self.query_one("#confusion").cell_info(*event.coordinate)
        what = "hits" if ref == hyp else "deleted" if hyp == "∅" else "inserted" if ref == "∅" else "heard as " + hyp
        text = Text.assemble((ref, "bold"), f" {what}: {n}")
        if not math.isnan(share):
            text.append(f" ({_pct(share)}% of {ref})")
        self.query_one("#confusion-cell", Static).update(text)

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        from kidconsole.report.phonemes import EPS

        matrix = self.query_one("#confusion")
        ref, hyp, n, _ = matrix.cell_info(*matrix.cursor_coordinate)
        if ref == hyp or not n:
            return
        a = self.report.analysis
        vocab = {p: i for i, p in enumerate(a.vocab)}
        sel = (a.err_ref == (vocab[ref] if ref != EPS else -1)) & (a.err_hyp == (vocab[hyp] if hyp != EPS else -1))
        utts = np.unique(a.err_utt[sel])
        if self.members is not None:
            utts = np.intersect1d(utts, self.members)
        self.app.push_screen(UtterancesScreen(self.report, f"{self.title_text}: {ref} → {hyp}", utts))
