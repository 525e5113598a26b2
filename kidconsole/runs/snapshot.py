"""One typed snapshot of a run, built once here (``snapshot_of``), rendered by the console's run card
(``tui.watcher.RunView`` adds the machine's numbers to it), ``run ls`` and ``run ls --json`` (``to_json``).

The snapshot joins what the run's reader summarised of its history (``RunReader.summary``: progress,
metrics, the newest evaluation's cost), its typed status (``rundir.Status``), its kind, the one rule's state
(``life.state_of``) and where it runs. Light: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kidconsole import rundir
from kidconsole.runs.state import STALL_AFTER

# the metrics a card shows (last and best); `run ls` shows PER and loss of them
METRICS = ("train/loss", "eval/loss", "eval/per", "eval/cer", "eval/wer")


@dataclass(frozen=True)
class Metric:
    """A chart series' last point and its minimum (best), with their steps."""
    last: float | None = None
    last_step: float | None = None
    best: float | None = None
    best_step: float | None = None


@dataclass(frozen=True, kw_only=True)
class RunSnapshot:
    """A run as of one read: what every view of it shows."""
    path: Path
    name: str
    state: str
    kind: str = rundir.LOCAL
    phase: Any = None
    phase_name: str | None = None
    step: int | None = None
    total_steps: int | None = None
    eta: float | None = None  # seconds
    samples_per_s: float | None = None
    steps_per_s: float | None = None  # a run of another tool: the pace of its logged steps (no samples counted)
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)  # what -> count
    has_predictions: bool = False
    test: dict[str, Any] = field(default_factory=dict)  # the final test evaluation: per, cer, wer, n
    started_at: float | None = None
    updated_at: float | None = None  # the newest sign of life
    loading: bool = False  # older history still being read: bests are of the newest events only
    gpu_ids: tuple[int, ...] = ()
    queue_position: int | None = None  # while queued: 1-based place in its runs root's queue
    waiting_for: str | None = None     # while queued: what it waits for, as of the queue's last pass
    sweep: str | None = None           # the sweep id of a run started by `run sweep`
    sweep_point: tuple[str, ...] = ()  # its grid point: key=value per varied key
    source_config: str | None = None   # the config file the run was launched from (status.json)
    where: str | None = None  # a Slurm run's job and nodes, or the host of a run elsewhere
    eval_cost: Any = None  # kidconsole.runs.evalcost.EvalCost of the newest evaluation
    per_age: dict[str, float | None] = field(default_factory=dict)  # the newest evaluation's PER per age group
    scoring_only: bool = False  # a model scored on a manifest (a baseline, an export): no training
    read_only: bool = False  # written by another tool (a Hugging Face Trainer, TensorBoard): read, never run here
    augmented: dict[str, int] = field(default_factory=dict)  # utterances given each augmentation so far

    @property
    def progress(self) -> float | None:
        if self.step is None or not self.total_steps:
            return None
        return min(1.0, self.step / self.total_steps)

    @property
    def last(self) -> dict[str, float | None]:
        return {m: v.last for m, v in self.metrics.items()}

    @property
    def best(self) -> dict[str, tuple[float, int | None]]:
        """Each metric's best value and its step, for those that have one."""
        return {m: (v.best, _int(v.best_step)) for m, v in self.metrics.items() if v.best is not None}

    def to_json(self) -> dict:
        """The run as `run ls --json` gives it: plain numbers (fractions, seconds, unix times)."""
        per, loss = self.metrics.get("eval/per") or Metric(), self.metrics.get("train/loss") or Metric()
        cost = self.eval_cost
        return {"run": self.path.name, "path": str(self.path), "kind": self.kind, "state": self.state,
                "phase": self.phase, "step": self.step, "total_steps": self.total_steps, "loss": loss.last,
                "eval_per": per.last, "best_per": per.best, "best_per_step": _int(per.best_step),
                "best_of_newest_only": self.loading and per.best is not None,
                "eval_share": cost.share if cost else None, "eval_seconds": cost.seconds if cost else None,
                "eval_left_s": cost.left if cost else None, "samples_per_s": self.samples_per_s,
                "eta_s": self.eta, "updated_at": self.updated_at, "gpus": list(self.gpu_ids),
                "test": self.test or None, "scoring_only": self.scoring_only,
                "queue_position": self.queue_position, "where": self.where, "read_only": self.read_only,
                "augmented": self.augmented}


def snapshot_fields(reader: Any, *, now: float | None = None, stall_after: float = STALL_AFTER) -> dict:
    """The fields of a run's snapshot from its polled reader (for ``RunSnapshot`` or a view built on it)."""
    from kidconsole.runs.kinds import kind_of
    from kidconsole.runs.life import state_of

    summary, status, path = reader.summary, reader.status, Path(reader.path)
    kind = kind_of(path, status)
    # the card's metrics, and any other evaluation metric a run written by another tool logged (eval/accuracy)
    metrics = {m: Metric(**(summary.get(m) or {})) for m in (*METRICS, *summary.get("extra_metrics", ()))}
    return dict(
        path=path, name=summary.get("name") or path.name, kind=kind.name,
        state=state_of(path, status, end_event=reader.end_event, last_sign=reader.last_sign_of_life(),
                       last_progress=reader.last_progress(), now=now, stall_after=stall_after, kind=kind),
        phase=summary.get("phase"), phase_name=summary.get("phase_name"), step=_int(summary.get("step")),
        total_steps=_int(summary.get("total_steps")), eta=summary.get("eta_s"),
        samples_per_s=summary.get("samples_per_s"), steps_per_s=summary.get("steps_per_s"), metrics=metrics, warnings=dict(reader.warning_counts),
        has_predictions=(path / rundir.PREDICTIONS).exists(), test=summary.get("test") or {},
        started_at=summary.get("started_at"), updated_at=summary.get("updated_at"),
        loading=bool(summary.get("loading")), gpu_ids=tuple(status.gpus or ()),
        queue_position=_int(status.queue_position), waiting_for=status.waiting_for, sweep=status.sweep,
        sweep_point=tuple(status.sweep_point or ()), source_config=status.source_config, where=kind.where(status),
        eval_cost=summary.get("eval_cost"), per_age=summary.get("per_age") or {},
        scoring_only=bool(summary.get("scoring_only")), read_only=kind.read_only,
        augmented=summary.get("augmented") or {})


def snapshot_of(reader: Any, *, now: float | None = None, stall_after: float = STALL_AFTER) -> RunSnapshot:
    """The snapshot of a run from its polled reader (``life.open_run``)."""
    return RunSnapshot(**snapshot_fields(reader, now=now, stall_after=stall_after))


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
