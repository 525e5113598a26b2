"""The subset builder as a console screen: a form, a build on a thread worker, the report.

Keys: ``b`` builds (``enter`` in any field too), ``escape`` leaves a field and
then the screen. The build runs ``kidconsole.subset.build.build_subset`` on a
thread worker, so the console keeps drawing; its progress comes back through
``call_from_thread``.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, DataTable, Footer, Header, Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from kidconsole.errors import KidconsoleError
from kidconsole.shown import markup, text
from kidconsole.subset.options import parse_max_val_samples, parse_numbers

STAGES = ("reading manifest", "selecting", "writing manifests")
FIELDS = (  # id, label, default, placeholder
    ("manifest", "Manifest", "", "path to the corpus manifest (JSONL)"),
    ("hours", "Hours", "", "total hours; empty: as much as the pools give"),
    ("split", "Split shares", "0.915/0.052/0.033", "train/validation/test"),
    ("fractions", "Curriculum", "0.2/0.6/1", "nested fractions of train, ending with 1"),
    ("max_val_samples", "Val. sample", "20000", "utterances; 'none': all of validation"),
    ("seed", "Seed", "0", "random seed"),
    ("out_dir", "Output dir", "", "folder for the manifests and report"),
)
POOL_LABEL = "Pool the source splits"
_LABELS = {key: f"'{label}'" for key, label, *_ in FIELDS}
# what the builder's errors call each option here (see kidconsole.subset.options)
FORM_NAMES = {"hours": _LABELS["hours"], "split_hours": _LABELS["hours"], "split_shares": _LABELS["split"],
              "fractions": _LABELS["fractions"], "max_val_samples": _LABELS["max_val_samples"],
              "pool": f"tick '{POOL_LABEL}'",
              "edges": "the bucket edges, set by kidconsole subset build --age-edges, --snr-edges, --duration-edges"}


class SubsetScreen(Screen):
    TITLE = "Subsets"
    BINDINGS = [
        Binding("b", "build", "Build"),
        Binding("escape", "back", "Back"),
    ]
    DEFAULT_CSS = """
    SubsetScreen #form { grid-size: 2; grid-columns: 14 1fr; grid-rows: auto; height: auto; padding: 0 1; }
    SubsetScreen #form Label { padding: 1 0 0 0; }
    SubsetScreen #status { padding: 0 1; height: auto; }
    SubsetScreen #status.error { color: $error; }
    SubsetScreen #progress { padding: 0 1; }
    SubsetScreen DataTable { height: auto; max-height: 16; margin: 1 1 0 1; }
    """

    def __init__(self, manifest: Path | None = None, out_dir: Path | None = None):
        super().__init__()
        self.initial = {"manifest": str(manifest) if manifest else "", "out_dir": str(out_dir) if out_dir else ""}
        self.result = None      # the last SubsetResult
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            with Grid(id="form"):
                for key, label, default, placeholder in FIELDS:
                    yield Label(label)
                    yield Input(self.initial.get(key) or default, placeholder=placeholder, id=key)
                yield Label("")
                yield Checkbox(f"{POOL_LABEL} (ignore the corpus's train/validation/test folders)", id="pool")
            yield Static("Fill the form, then b (or enter) builds.", id="status")
            yield ProgressBar(total=len(STAGES), show_eta=False, id="progress")
            yield DataTable(id="splits", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="shares", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#progress", ProgressBar).display = False
        self.query_one("#splits", DataTable).display = False
        self.query_one("#shares", DataTable).display = False
        self.query_one("#manifest", Input).focus()

    # ---- actions
    def action_back(self) -> None:
        # escape first leaves a text field (so b works), then leaves the screen
        if isinstance(self.focused, Input):
            self.set_focus(None)
        else:
            self.app.pop_screen()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_build()

    def options(self) -> dict:
        """The form as ``build_subset`` keyword arguments; a bad field raises KidconsoleError."""
        value = {key: self.query_one(f"#{key}", Input).value.strip() for key, *_ in FIELDS}
        if not value["manifest"]:
            raise KidconsoleError("Manifest: give the path of a corpus manifest")
        if not value["out_dir"]:
            raise KidconsoleError("Output dir: give a folder for the subset")
        try:
            hours = float(value["hours"]) if value["hours"] else None
        except ValueError:
            raise KidconsoleError(f"Hours: expected a number, got {value['hours']!r}") from None
        try:
            seed = int(value["seed"] or 0)
        except ValueError:
            raise KidconsoleError(f"Seed: expected a whole number, got {value['seed']!r}") from None
        return dict(
            manifest=Path(value["manifest"]).expanduser(), out_dir=Path(value["out_dir"]).expanduser(),
            hours=hours, split_shares=parse_numbers(value["split"], what="Split shares"),
            fractions=parse_numbers(value["fractions"], what="Curriculum"),
            max_val_samples=parse_max_val_samples(value["max_val_samples"], what="Val. sample"),
            seed=seed, use_source_splits=not self.query_one("#pool", Checkbox).value,
        )

    def action_build(self) -> None:
        if self.building:
            self.notify("A build is already running.", severity="warning")
            return
        try:
            options = self.options()
        except KidconsoleError as e:
            self.show_error(str(e))
            return
        self.error = None
        self.set_status(f"Building a subset of {options['manifest']} ...")
        bar = self.query_one("#progress", ProgressBar)
        bar.update(progress=0)
        bar.display = True
        # exit_on_error=False: a failed build is shown on the screen, the console stays up
        self.run_worker(lambda: self._build(options), thread=True, exclusive=True, group="subset",
                        name="subset-build", exit_on_error=False)

    @property
    def building(self) -> bool:
        return any(w.is_running for w in self.workers if w.group == "subset")

    # ---- worker side (runs on a thread)
    def _build(self, options: dict):
        from kidconsole.subset.build import build_subset

        def progress(stage: str, fraction: float) -> None:
            self.app.call_from_thread(self._progress, stage, fraction)

        return build_subset(**options, progress=False, on_progress=progress, names=FORM_NAMES)

    def _progress(self, stage: str, fraction: float) -> None:
        done = STAGES.index(stage) + fraction if stage in STAGES else 0
        self.query_one("#progress", ProgressBar).update(progress=done)

    # ---- back on the UI thread
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "subset":
            return
        if event.state == WorkerState.SUCCESS:
            self.query_one("#progress", ProgressBar).display = False
            self.show_result(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.query_one("#progress", ProgressBar).display = False
            err = event.worker.error
            self.show_error(str(err) if isinstance(err, KidconsoleError) else f"{type(err).__name__}: {err}")

    def set_status(self, message: str, error: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.update(text(message, lines=True))  # errors and paths from disk: shown as written
        status.set_class(error, "error")

    def show_error(self, message: str) -> None:
        self.error = message
        self.set_status(f"Cannot build: {message}", error=True)

    def show_result(self, result) -> None:
        self.result = result
        splits = self.query_one("#splits", DataTable)
        splits.clear(columns=True)
        splits.add_columns("output", "target h", "hours", "miss", "utterances", "speakers", "max dev (pp)")
        for name, s in result.outputs.items():
            splits.add_row(markup(name), f"{s.target_hours:.2f}" if s.target_hours else "", f"{s.hours:.2f}",
                           f"{s.hours_error * 100:+.2f}%" if s.hours_error is not None else "",
                           f"{s.utterances:,}", f"{s.speakers:,}", f"{s.max_deviation_pp:.2f}", key=name)
        shares = self.query_one("#shares", DataTable)
        shares.clear(columns=True)
        names = list(result.splits) + ["validation_sample"]
        shares.add_columns("stratum", "corpus %", *(f"{n} %" for n in names))
        for dim, buckets in result.corpus.shares.items():
            for label, ref in buckets.items():
                shares.add_row(markup(f"{dim} {label}"), f"{ref * 100:.2f}",
                               *(f"{result.outputs[n].shares[dim].get(label, 0.0) * 100:.2f}" for n in names),
                               key=f"{dim}:{label}")
        splits.display = shares.display = True
        warn = f"  {len(result.warnings)} warning(s): see report.md." if result.warnings else ""
        self.set_status(f"Built in {result.seconds:.1f} s: {result.out_dir}/ (report.md, report.json).{warn}")
        splits.focus()
