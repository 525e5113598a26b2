"""One run on the dashboard: state, progress, speed, GPU, last and best metrics."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widgets import Static

from kidconsole import palette, rundir
from kidconsole.runs import evalcost
from kidconsole.shown import visible
from kidconsole.tui.watcher import RunView

ROWS = (("loss", "train/loss", False), ("eval", "eval/loss", False), ("PER", "eval/per", True), ("CER", "eval/cer", True))
RATES = ("per", "cer", "wer")  # error rates, shown as percentages
WARNING_NAMES = {rundir.BAD_SAMPLE: "bad samples", rundir.NONFINITE_LOSS: "non-finite losses",
                 rundir.VOCAB_MISSING: "symbols new to the head", rundir.VOCAB_UNVERIFIED: "head order unverified",
                 rundir.CHECKPOINT_DAMAGED: "damaged checkpoints"}


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"


def fmt_metric(v: float | None, percent: bool) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.2%}" if percent else f"{v:.4g}"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**30:.1f}G" if n >= 2**30 else f"{n / 2**20:.0f}M"


def bar(fraction: float | None, width: int) -> Text:
    if fraction is None:
        return Text("·" * width, style="dim")
    full = int(round(fraction * width))
    return Text.assemble(("█" * full, palette.PROGRESS), ("░" * (width - full), "dim"))


def fmt_seconds(seconds: float | None) -> str:
    """Short durations in seconds ("42s"), longer ones as ``fmt_duration``."""
    if seconds is not None and 0 <= seconds < 59.5:
        return f"{seconds:.0f}s"
    return fmt_duration(seconds)


def eval_cost_lines(view: RunView, w: int, threshold: float = evalcost.EVAL_SHARE_WARN) -> list[Text]:
    """Evaluation's share of wall time, seconds per evaluation and the evaluation time still ahead; past
    ``threshold`` in the warning colour, with the config keys that bring it down."""
    cost = view.eval_cost or evalcost.EvalCost(None, None, None)
    share = "-" if cost.share is None else f"{cost.share:.0%}"
    line = f"eval share {share}  {fmt_seconds(cost.seconds)}/eval  {fmt_seconds(cost.left)} left"
    if not cost.too_costly(threshold):
        return [Text(line)]
    style = palette.WARNING
    if w >= len(cost.advice) + 2:
        advice = [f"⚠ {cost.advice}"]
    else:
        first, _, second = cost.advice.partition(" or ")
        advice = [f"⚠ {first}", f"  or {second}"]
    return [Text(line, style=style)] + [Text(a, style=style) for a in advice]


def worst_age_line(per_age: dict | None) -> Text:
    """The age group with the highest PER in the newest evaluation."""
    worst = evalcost.worst_bucket(per_age)
    if worst is None:
        return Text("worst age -", style="dim")
    label, per = worst
    return Text.assemble("worst age ", (label, "bold"), f"  PER {fmt_metric(per, True)}")


def warnings_line(view: RunView) -> Text:
    warn = {k: v for k, v in view.warnings.items() if v}
    if not warn:
        return Text("no warnings", style="dim")
    txt = ", ".join(f"{n} {visible(WARNING_NAMES.get(k, k))}" for k, v in sorted(warn.items()) for n in [v])
    return Text("⚠ " + txt, style=palette.WARNING, overflow="ellipsis", no_wrap=True)


def scoring_card_text(view: RunView, width: int) -> Text:
    """A scoring-only run (a baseline, an export scored on a manifest): its test figures, compactly."""
    w = max(width, 30)
    t = view.test
    if not t:
        lines = [Text("scoring only: no test figures yet", style="dim")]
    else:
        n = f"{t['n']:,} utterances" if isinstance(t.get("n"), int) else "test"
        lines = [Text(f"scored on {n}"),
                 Text.assemble(("PER ", "bold"), (fmt_metric(t.get("per"), True), "bold"),
                               f"  CER {fmt_metric(t.get('cer'), True)}  WER {fmt_metric(t.get('wer'), True)}"),
                 worst_age_line(t.get("per_age"))]
    lines.append(warnings_line(view))
    for line in lines:
        line.truncate(w, overflow="ellipsis")
    return Text("\n").join(lines)


def queued_text(view: RunView) -> list[Text]:
    """A queued run's card: its place, what it waits for, its sweep point (nothing has run yet)."""
    place = f"queued #{view.queue_position}" if view.queue_position else "queued"
    lines = [Text(place, style=palette.state_style(rundir.QUEUED)),
             Text(f"waits for {visible(view.waiting_for or 'the next pass over the queue')}")]
    if view.sweep_point:
        lines.append(Text("sweep point " + visible(" ".join(view.sweep_point)), style="dim"))
    return lines


def system_line(view: RunView) -> Text | None:
    """One compact line of the machine under a live run: its processes' CPU and resident memory, its GPUs'
    temperature and power, the free disk; or a warning when the next checkpoint will not fit. None for a run
    that has ended with room to spare (nothing of the machine is its concern any more)."""
    sysv = view.system
    if sysv is not None and sysv.disk_short:
        return Text(f"⚠ disk {fmt_bytes(sysv.disk_free)} free < checkpoint {fmt_bytes(sysv.checkpoint_bytes)}",
                    style=palette.WARNING)
    if view.state not in rundir.STOPPABLE_STATES:
        return None
    parts = []
    if sysv is not None and sysv.cpu is not None:
        parts.append(f"cpu {sysv.cpu:.0f}% {_short_bytes(sysv.rss)}")
    for g in view.gpus:
        if g.temp is not None or g.power is not None:
            parts.append(" ".join(s for s in (f"{g.temp:.0f}°C" if g.temp is not None else "",
                                              f"{g.power:.0f}W" if g.power is not None else "") if s))
    if sysv is not None and sysv.disk_free is not None:
        parts.append(f"{_short_bytes(sysv.disk_free)} free")
    return Text("  ".join(parts), style="dim") if parts else None


def _short_bytes(n: float | None) -> str:
    """At most three digits (``812G``, ``6.4G``, ``512M``): the system line must fit a card at 80 columns."""
    return f"{n / 2**30:.0f}G" if n is not None and n >= 100 * 2**30 else fmt_bytes(n)


def metric_rows(view: RunView) -> list[tuple[str, str, bool]]:
    """(label, series, percent) of the card's metric rows: ours; where a run has no PER or CER (one written by
    another tool), the other evaluation metrics it logged (WER, accuracy ...) take their rows."""
    def has(key: str) -> bool:
        m = view.metrics.get(key)
        return m is not None and (m.last is not None or m.best is not None)

    taken = {key for _, key, _ in ROWS}
    others = [k for k in view.metrics if k.startswith("eval/") and k not in taken and has(k)]
    rows = []
    for label, key, pct in ROWS:
        if not has(key) and key in ("eval/per", "eval/cer") and others:
            key = others.pop(0)
            name = key.removeprefix("eval/")
            label, pct = (name.upper() if name in RATES else name)[:5], name in RATES
        rows.append((label, key, pct))
    return rows


def card_text(view: RunView, width: int, eval_share_warn: float = evalcost.EVAL_SHARE_WARN) -> Text:
    """The card's body (its border carries the name and the state)."""
    if view.scoring_only:
        return scoring_card_text(view, width)
    w = max(width, 30)
    if view.state == rundir.QUEUED:
        return Text("\n").join(queued_text(view))
    lines: list[Text] = []
    phase = f"phase {view.phase}" if view.phase is not None else "phase -"
    if view.phase_name:  # a run without phases (another tool's) shows its epoch there
        name = visible(view.phase_name)
        phase = f"{phase} {name}" if view.phase is not None else name
    step = f"{view.step:,}" if view.step is not None else "-"
    total = f"/{view.total_steps:,}" if view.total_steps else ""
    right = f"step {step}{total}"
    lines.append(Text(phase[: w - len(right) - 1].ljust(w - len(right)) + right))
    pct = f" {view.progress:4.0%}" if view.progress is not None else ""
    eta = f"  ETA {fmt_duration(view.eta)}"
    lines.append(Text.assemble(bar(view.progress, max(4, w - len(pct) - len(eta))), pct, eta))
    speed = f"{view.samples_per_s:.1f} samples/s" if view.samples_per_s else "- samples/s"
    if not view.samples_per_s and view.steps_per_s:  # a run of another tool: its logged steps' pace
        speed = f"{view.steps_per_s:.2f} steps/s"
    if view.gpus:
        gpu = " ".join(f"GPU{g.index} {g.util:.0f}%" if g.util is not None else f"GPU{g.index} -" for g in view.gpus)
        used = view.proc_gpu_mem if view.proc_gpu_mem is not None else sum(g.mem_used or 0 for g in view.gpus)
        total_mem = sum(g.mem_total or 0 for g in view.gpus)
        gpu += f" {fmt_bytes(used)}/{fmt_bytes(total_mem)}" if total_mem else ""
    else:
        gpu = "GPUs unknown" if view.read_only else "no GPU"  # a run of another tool records none
    lines.append(Text(speed.ljust(max(0, w - len(gpu))) + gpu))
    if (machine := system_line(view)) is not None:
        lines.append(machine)
    for label, key, pct_fmt in metric_rows(view):
        last = fmt_metric(view.last.get(key), pct_fmt)
        best = view.best.get(key)
        best_txt = ""
        if best is not None and best[0] is not None:
            at = f" @{best[1]:,}" if best[1] is not None else ""
            best_txt = f"best {fmt_metric(best[0], pct_fmt)}{at}"
        left = f"{label:<5}{last:>8}"
        lines.append(Text.assemble(left, " " * max(1, w - len(left) - len(best_txt)), (best_txt, "dim")))
    lines += eval_cost_lines(view, w, eval_share_warn)
    lines.append(worst_age_line(view.per_age))
    lines.append(warnings_line(view))
    if view.test:
        t = view.test
        n = f"  ({t['n']:,} utts)" if isinstance(t.get("n"), int) else ""
        lines.append(Text(f"test PER {fmt_metric(t.get('per'), True)}  CER {fmt_metric(t.get('cer'), True)}{n}",
                          style="bold"))
    for line in lines:
        line.truncate(w, overflow="ellipsis")
    return Text("\n").join(lines)


class RunCard(Static, can_focus=True):
    """A focusable card; its border is the run's colour, its title the run's name."""

    DEFAULT_CSS = """
    RunCard { height: auto; padding: 0 1; }
    RunCard:focus { background: $boost; }
    """

    def __init__(self, view: RunView, color: str, marked: bool = False):
        super().__init__(id=None)
        self.view = view
        self.color = color
        self.marked = marked

    @property
    def run_key(self) -> str:
        return self.view.key

    def set_view(self, view: RunView, marked: bool) -> None:
        changed = view != self.view or marked != self.marked
        self.view, self.marked = view, marked
        if changed:
            self._redraw()

    def on_mount(self) -> None:
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def watch_has_focus(self, has_focus: bool) -> None:
        # the border follows has_focus itself: an on_focus handler runs before Textual sets it
        super().watch_has_focus(has_focus)
        self._redraw()

    def _redraw(self) -> None:
        self.styles.border = ("heavy" if self.has_focus else "round", self.color)
        mark = "✓ " if self.marked else ""
        self.border_title = Text.assemble((f"{mark}{visible(self.view.name)}", f"bold {self.color}"))
        where = Text(f"{visible(self.view.where)} ", style="dim") if self.view.where else ""
        self.border_subtitle = Text.assemble(where, (f"● {visible(self.view.state)}",
                                                     palette.state_style(self.view.state)))
        self.styles.border_title_align = "left"
        self.styles.border_subtitle_align = "right"
        threshold = getattr(self.app, "eval_share_warn", evalcost.EVAL_SHARE_WARN)
        self.update(card_text(self.view, self.content_size.width or 36, threshold))
