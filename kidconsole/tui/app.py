"""The console: ``kidconsole`` with no subcommand.

Light by design: no torch, transformers or peft (a test pins it). Screens that
are not on the first frame are imported when first opened. All disk and NVML
work runs on the watcher thread (``watcher.py``); the UI only renders views.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches

from kidconsole import rundir
from kidconsole.runs.evalcost import EVAL_SHARE_WARN
from kidconsole.shown import visible
from kidconsole.tui import notify as notifications
from kidconsole.tui.colors import ColorBook
from kidconsole.tui.screens.dashboard import DashboardScreen
from kidconsole.tui.watcher import GpuView, RunsUpdated, RunView, Watcher

THEMES = ("textual-dark", "textual-light")
_SEVERITY = {rundir.FINISHED: "information", rundir.STOPPED: "warning", rundir.STALLED: "warning",
             rundir.FAILED: "error", rundir.INTERRUPTED: "error"}


class KidConsole(App):
    CSS_PATH = Path(__file__).parent / "console.tcss"  # absolute: subclasses elsewhere find it too
    TITLE = "kidconsole"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("s", "subset", "Subsets"),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, roots: list[str], *, clock: Callable[[], float] = time.time, system: Any = None,
                 interval: float = 1.0, find=None, make_reader=None, configs_dir: str | Path = "configs",
                 theme: str = "textual-dark", launcher: Callable[..., Path] | None = None,
                 baseline: str | Path | None = None, eval_share_warn: float = EVAL_SHARE_WARN,
                 exporter: Callable[[Path], int] | None = None, settings: Any = None,
                 seen_file: str | Path | None = None):
        super().__init__()
        self.eval_share_warn = eval_share_warn  # past it, a card says what to change
        self.roots = [str(r) for r in roots]
        # a run with predictions that `e` compares every other run against (the demo's base model score)
        self.baseline = Path(baseline).resolve() if baseline else None
        self.clock = clock
        self.configs_dir = Path(configs_dir)
        self._launcher = launcher
        self._exporter = exporter
        self.watcher = Watcher(self.roots, self, interval=interval, clock=clock, system=system, find=find,
                               make_reader=make_reader)
        self.views: dict[str, RunView] = {}
        self.gpus: tuple[GpuView, ...] = ()
        self.marked: set[str] = set()
        self.run_colors = ColorBook()
        self.theme = theme
        self.sub_title = visible(", ".join(self.roots))
        self.settings = settings if settings is not None else notifications.load_user_config()
        self.seen = notifications.Seen.load(seen_file or notifications.state_dir() / notifications.SEEN_FILE)
        self.away: list = []  # runs that ended while the console was closed (told once, on the first update)
        self._states: dict[str, str] | None = None  # the state of each run at the previous update

    def get_default_screen(self) -> DashboardScreen:
        return DashboardScreen()

    def notify(self, message: str, *, title: str = "", severity: str = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every notification as written: they carry run names and errors from disk, so never markup, and
        their control characters shown (``kidconsole.shown``)."""
        super().notify(visible(message, lines=True), title=visible(title), severity=severity, timeout=timeout,
                       markup=markup)

    def on_mount(self) -> None:
        self.watcher.start()

    def on_unmount(self) -> None:
        self.watcher.stop()

    def on_runs_updated(self, message: RunsUpdated) -> None:
        self.views = message.views
        self.gpus = message.gpus
        self._tell_ends()
        self.run_colors.assign([v.name for v in self.views.values()])
        self.marked &= set(self.views)
        changed = getattr(self.screen, "runs_changed", None)
        if changed is not None:
            try:
                changed()
            except NoMatches:
                pass  # the screen is still composing: it reads app.views when mounted

    # ---- notifications (kidconsole/tui/notify.py)
    def _tell_ends(self) -> None:
        cfg = self.settings.notify
        states = {k: v.state for k, v in self.views.items()}
        if self._states is None:
            self.away = notifications.away(self.seen, self.views, cfg.states)
            if self.away and cfg.toast:
                self.notify("Ended while you were away: " + "; ".join(e.message() for e in self.away),
                            title="While you were away", timeout=30)
        else:
            for ended in notifications.transitions(self._states, self.views, cfg.states):
                if cfg.toast:
                    self.notify(ended.message(), title="Run ended" if ended.state != rundir.STALLED else "Run stalled",
                                severity=_SEVERITY.get(ended.state, "information"), timeout=15)
                if cfg.bell:
                    self.bell()
                if cfg.command:
                    self.run_worker(lambda e=ended: self._notify_command(e), thread=True, group="notify")
        if states != self._states:
            self._states = states
            self.seen.states.update(states)
            self.seen.queue()
            self.run_worker(self.seen.flush, thread=True, group="seen")

    def _notify_command(self, ended) -> None:
        problem = notifications.run_command(self.settings.notify.command, ended)
        if problem:
            self.call_from_thread(self.notify, problem, severity="warning")

    # ---- helpers shared by screens
    def view(self, key: str) -> RunView | None:
        return self.views.get(key)

    def toggle_mark(self, key: str) -> None:
        self.marked ^= {key}

    def chart_keys(self) -> list[str]:
        """The runs the charts overlay: the marked ones, or every run when none is marked."""
        keys = [k for k in self.marked if k in self.views] or list(self.views)
        return sorted(keys, key=lambda k: (self.views[k].name, k))

    def launcher(self, config: str, **kwargs) -> Path:
        """Start a run (``kidconsole.runs.launch.launch_run`` unless another was given)."""
        if self._launcher is None:
            from kidconsole.extras import need
            from kidconsole.runs.launch import launch_run

            need("train", "launching a run")
            self._launcher = launch_run
        return self._launcher(config, **kwargs)

    # ---- navigation
    def open_detail(self, key: str) -> None:
        from kidconsole.tui.screens.run_detail import RunDetailScreen

        self.push_screen(RunDetailScreen(key))

    def open_charts(self) -> None:
        from kidconsole.tui.screens.charts import ChartsScreen

        self.push_screen(ChartsScreen())

    def open_decodes(self, key: str) -> None:
        from kidconsole.tui.screens.decodes import DecodesScreen

        self.push_screen(DecodesScreen(key))

    def open_sweep(self, key: str) -> None:
        view = self.views.get(key)
        if view is None:
            return
        if not view.sweep:
            self.notify(f"{view.name} is not part of a sweep (`kidconsole run sweep` makes one).", severity="warning")
            return
        from kidconsole.tui.screens.sweep import SweepScreen

        self.push_screen(SweepScreen(view.sweep))

    def open_launch(self) -> None:
        from kidconsole.tui.screens.launch import LaunchScreen

        self.push_screen(LaunchScreen())

    def open_errors(self, key: str) -> None:
        view = self.views.get(key)
        if view is None:
            return
        if not view.has_predictions:
            self.notify(f"{view.name} has no {rundir.PREDICTIONS} yet (written by the final test evaluation).",
                        severity="warning")
            return
        from kidconsole.tui.screens.errors import ErrorsScreen

        self.push_screen(ErrorsScreen(view.path, references=self.reference_candidates(key)))

    def reference_candidates(self, key: str) -> list[Path]:
        """What `e` may compare a run against, first choice first: the other marked runs with predictions,
        then the baseline. The errors screen takes the first scored on the run's test manifest."""
        others = [Path(self.views[k].path) for k in (self.chart_keys() if self.marked else ())
                  if k != key and self.views[k].has_predictions]
        return others + ([self.baseline] if self.baseline is not None else [])

    def action_subset(self) -> None:
        from kidconsole.tui.screens.subset import SubsetScreen

        self.push_screen(SubsetScreen())

    def action_help(self) -> None:
        from kidconsole.tui.screens.help import HelpScreen, help_sections

        self.push_screen(HelpScreen(help_sections(type(self.screen), self.BINDINGS)))

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    # ---- a run's ONNX / INT8 export, confirmed, started in the background
    def start_export(self, key: str, running: bool = False) -> None:
        from kidconsole.tui.screens.confirm import ConfirmScreen

        view = self.views.get(key)
        if view is None or self._refused_read_only(view, "export"):
            return
        if running:
            self.notify(f"{view.name}: an export is already running (exports/{rundir.EXPORT_LOG}).", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(lambda: self._export(view), thread=True, group="control")

        self.push_screen(ConfirmScreen(f"Export {view.name} to ONNX fp32 and INT8?\nIt runs in the background on the "
                                       f"CPU, scored on the test manifest; its output goes to "
                                       f"exports/{rundir.EXPORT_LOG}."), answered)

    def _export(self, view: RunView) -> None:
        from kidconsole.errors import KidconsoleError

        try:
            if self._exporter is None:
                from kidconsole.extras import need
                from kidconsole.runs.exports import start_export

                need("train", "exporting a run")
                self._exporter = start_export
            pid = self._exporter(view.path)
            self.call_from_thread(self.notify, f"{view.name}: export started (pid {pid}); the exports tab follows it")
        except (KidconsoleError, OSError) as e:
            self.call_from_thread(self.notify, f"{view.name}: {e}", severity="error")

    # ---- stop / resume, confirmed, off the UI thread
    def confirm_stop(self, key: str) -> None:
                self._confirm(key, "stop", lambda v: v.state not in rundir.STOPPABLE_STATES, "nothing to stop",
                      lambda v: f"Stop {v.name} at step {v.step or 0:,}?\n"
                                "It writes a checkpoint, then exits; resume continues from it.",
                      "Stopping {} (saves a checkpoint first)...")

    def confirm_resume(self, key: str) -> None:
        self._confirm(key, "resume", lambda v: v.state in rundir.LIVE_STATES, "it is still going",
                      lambda v: f"Resume {v.name} from its last checkpoint?", "Resuming {}...")

    def confirm_average(self, key: str) -> None:
        """Average the best checkpoints of a finished run (``AVERAGE_BEST`` of them, or as many as it kept)
        into a new run, in the background: it shows as a new card."""
        self._confirm(key, "average", lambda v: v.state != rundir.FINISHED, "only a finished run's checkpoints "
                      "are averaged",
                      lambda v: f"Average the {_average_n(v.path)} best checkpoints of {v.name}'s last phase?\n"
                                "A new run: the averaged model, scored on the test manifest and exported.",
                      "Averaging the best checkpoints of {} (a new run)...")

    def _confirm(self, key: str, what: str, refused: Callable[[RunView], bool], why: str,
                 question: Callable[[RunView], str], doing: str) -> None:
        """Ask first; on yes, ``what`` (stop or resume) runs on a worker thread."""
        from kidconsole.tui.screens.confirm import ConfirmScreen

        view = self.views.get(key)
        if view is None or self._refused_read_only(view, what):
            return
        if refused(view):
            self.notify(f"{view.name} is {view.state}: {why}.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(doing.format(view.name))
                self.run_worker(lambda: self._control(what, view), thread=True, group="control")

        self.push_screen(ConfirmScreen(question(view)), answered)

    def _refused_read_only(self, view: RunView, what: str) -> bool:
        """A run written by another tool is read, never run here: say so instead of asking."""
        if not view.read_only:
            return False
        from kidconsole.runs.kinds import kind_named

        self.notify(kind_named(view.kind).refusal(view.path, what), severity="warning")
        return True

    def _control(self, what: str, view: RunView) -> None:
        from kidconsole.errors import KidconsoleError
        from kidconsole.runs import life

        try:
            if what != "stop":
                from kidconsole.extras import need

                need("train", f"{'averaging' if what == 'average' else 'resuming'} a run")
            if what == "stop":
                result = life.stop(view.path)
                message = f"{view.name}: {result}"
            elif what == "average":
                from kidconsole.runs.derive import average_job

                out, argv = average_job(view.path, best=_average_n(view.path))
                life.start_job(out, argv)
                message = f"{view.name}: averaging into {out.name}"
            else:
                message = f"{view.name}: {life.resume(view.path)}"
            self.call_from_thread(self.notify, message)
        except (KidconsoleError, OSError) as e:
            self.call_from_thread(self.notify, f"{view.name}: {e}", severity="error")
        self.watcher.wake(rediscover=True)


AVERAGE_BEST = 3  # checkpoints the run detail's `a` averages


def _average_n(run: str | Path) -> int:
    """AVERAGE_BEST, or fewer when the run kept fewer scored checkpoints of its last phase."""
    return max(2, min(AVERAGE_BEST, len(rundir.last_phase_checkpoints(run))))


def run_console(roots: list[str], *, baseline: str | Path | None = None,
                eval_share_warn: float = EVAL_SHARE_WARN) -> int:
    """Open the console on ``roots`` until the user quits; returns the exit code. With ``baseline``
    (a run directory with predictions), `e` on another run shows its report against it."""
    KidConsole(roots, baseline=baseline, eval_share_warn=eval_share_warn).run()
    return 0
