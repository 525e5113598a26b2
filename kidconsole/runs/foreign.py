"""Readers of runs written by other tools, read where they lie: a Hugging Face Trainer's output folder
(``HfReader``) and a folder of TensorBoard event files from any writer (``TensorBoardReader``).

Each is a ``RunReader`` whose history comes from the tool's files instead of events.jsonl: the chart series
(``series``, ``series_by``: our names where the meaning is ours, ``scalars.py``), the summary (step of the
total, epoch, metrics last and best, the evaluations' cost, ETA) and a typed status made from the files
(``Status``: ``finished`` once the tool logged its end, else ``running``; ``updated_at`` the files' newest
change), so the one state rule (``state.decide``, through the kind's signs: kinds/hf.py, kinds/tensorboard.py),
the snapshot, the card, `run ls` and the charts take them as they take ours.

Live: event files are tailed by byte offset, the newest part first and older history on later polls
(``tfevents.TensorBoardTail``); a Trainer's newest ``trainer_state.json`` is read again when a newer one
appears (a new checkpoint, ``hf_state.HfStateTail``). A damaged or half-written file is counted in the
run's warnings, never raised.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from kidconsole.rundir.records import Status
from kidconsole import rundir
from kidconsole.runs import evalcost, holders
from kidconsole.runs.hf_state import STATE, HfStateTail, checkpoints
from kidconsole.runs.reader import SUMMARY_METRICS, RunReader
from kidconsole.runs.series import Series
from kidconsole.runs.state import STALL_AFTER
from kidconsole.runs.tfevents import TensorBoardTail

NEWEST_BYTES = 64 << 10    # event-file bytes read at the first poll (the newest history: a card, a `run ls` row)
OLDER_BYTES = 2 << 20      # event-file bytes of older history loaded per later poll
NEWEST_ENTRIES = 2000      # trainer_state.json entries taken as series at the first reading (all at the next)
END_TAGS = ("train/train_runtime",)  # the Trainer logs its run's runtime once training ended
RUNTIME = "eval/runtime"
# eval series that are speeds and times, not metrics of the model (charted, not on the card)
NOT_METRICS = (RUNTIME, "eval/samples_per_second", "eval/steps_per_second")
DAMAGED_EVENTS, UNREADABLE_STATE = "damaged event files", "unreadable trainer states"


class ScalarRunReader(RunReader):
    """A run read from TensorBoard event files (and, in a subclass, more of the tool's files). Subclasses
    give ``tb_folder`` and may add sources in ``_poll_more``, metrics in ``_joined`` and facts in ``_facts``."""
    eval_advice = "evaluate less often or on fewer utterances"

    def __init__(self, run_dir: str | Path, *, newest_bytes: int = NEWEST_BYTES, older_bytes: int = OLDER_BYTES):
        super().__init__(run_dir)
        self.facts: dict = {}
        self.polls = 0
        self.tb = TensorBoardTail(self.tb_folder(), newest_bytes=newest_bytes, older_bytes=older_bytes)
        self._status_fields: tuple | None = None

    def tb_folder(self) -> Path:
        return self.path

    # ---- reading
    def poll(self) -> int:
        n = self.tb.poll() + self._poll_more()
        self.polls += 1
        self._by = {"step": self._joined(), "samples": {}, "time": dict(self.tb.scalars.by["time"])}
        self._update_rate()
        self._make_status()
        return n + self._poll_decodes()

    def _poll_more(self) -> int:
        return 0

    def _joined(self) -> dict[str, Series]:
        return {k: s for k, s in self.tb.scalars.by["step"].items() if len(s)}

    def _read_status(self) -> None:
        """The status is made at each poll from the tool's files (``_make_status``)."""

    @property
    def loading(self) -> bool:
        return self.tb.loading

    @property
    def loaded_fraction(self) -> float:
        total = sum(t.offset for t in self.tb.files.values()) or 1
        return 1.0 - sum(t.backfill_end for t in self.tb.files.values()) / total

    def _facts(self, updated: float | None) -> dict:
        """What the tool's files say beyond the series (``updated``: their newest change): ended, step,
        total_steps, epoch, num_epochs, started_at, train_runtime."""
        step = max((int(s.x[-1]) for k, s in self.series.items() if k.startswith("train/")), default=None)
        if step is None:
            step = max((int(s.x[-1]) for s in self.series.values()), default=None)
        runtime = self.series.get("train/train_runtime")
        return {"ended": any(t in self.series for t in END_TAGS), "step": step, "total_steps": None,
                "epoch": _last(self.series.get("train/epoch")), "num_epochs": None, "started_at": self.tb.started_at,
                "train_runtime": _last(runtime)}

    def _files(self) -> list[Path]:
        """The files whose change is a sign of life."""
        return list(self.tb.files)

    def _make_status(self) -> None:
        times = []
        for p in [self.path] + self._files():
            try:
                times.append(os.stat(p).st_mtime)
            except OSError:
                continue
        updated = max(times, default=None)
        facts = self._facts(updated)
        fields = (self.path.name, rundir.FINISHED if facts["ended"] else rundir.RUNNING, updated,
                  facts["step"], facts["total_steps"], facts["started_at"])
        if fields != self._status_fields:  # the same object until something changed (the watcher compares it)
            self._status_fields = fields
            name, state, updated, step, total, started = fields
            self._status = Status(name=name, state=state, updated_at=updated, step=step, total_steps=total,
                                  started_at=started)
        self.facts = facts

    def _update_rate(self) -> None:
        """(wall time, step) of the newest logged losses, for the ETA."""
        by_step, by_time = self.tb.scalars.by["step"].get("train/loss"), self.tb.scalars.by["time"].get("train/loss")
        self._rate.clear()
        if by_step is not None and by_time is not None and len(by_step) == len(by_time):
            k = self._rate.maxlen
            self._rate.extend(zip(by_time.x[-k:].tolist(), by_step.x[-k:].tolist()))

    # ---- what RunReader reads from events.jsonl, from the tool's files instead
    @property
    def summary(self) -> dict:
        out = super().summary
        facts = self.facts
        epoch, epochs = facts.get("epoch"), facts.get("num_epochs")
        if epoch is not None:
            out["phase_name"] = f"epoch {epoch:.2f}" + (f"/{epochs:g}" if epochs else "")
        extra = [k for k in self.series if k.startswith("eval/") and k not in SUMMARY_METRICS and k not in NOT_METRICS]
        for key in extra:
            s = self.series[key]
            last, best = s.last, s.min_point()
            out[key] = {"last": last[1] if last else None, "last_step": last[0] if last else None,
                        "best": best[1] if best else None, "best_step": best[0] if best else None}
        out["extra_metrics"] = sorted(extra)
        if len(self._rate) > 1:
            (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
            out["steps_per_s"] = (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else None
        return out

    def _eval_summary(self, step, total) -> dict:
        """The evaluations' cost from their logged runtimes: seconds of the newest, their share of the wall
        time (``_eval_share``), the evaluation time still ahead."""
        runtimes = self.series.get(RUNTIME)
        if runtimes is None or not len(runtimes):
            return {"eval_cost": evalcost.EvalCost(None, None, None), "per_age": {}}
        seconds = float(runtimes.y[-1])
        left = evalcost.eval_time_left(runtimes.x[-2:].tolist(), seconds, step, total)
        return {"eval_cost": evalcost.EvalCost(self._eval_share(), seconds, left, self.eval_advice), "per_age": {}}

    def _eval_share(self) -> float | None:
        """The event files' logged evaluation runtimes over the wall time they span, on the writer's clock:
        from its start to its newest event (the logged runtime once ended), or, while older history is still
        to load, over the span loaded (the newest evaluations' share)."""
        runtimes = self.tb.scalars.by["step"].get(RUNTIME)
        times = [s for s in self.tb.scalars.by["time"].values() if len(s)]
        if runtimes is None or not len(runtimes) or not times:
            return None
        newest = max(float(s.x[-1]) for s in times)
        if self.tb.loading:
            wall = newest - min(float(s.x[0]) for s in times)
        else:
            start = self.facts.get("started_at")
            wall = self.facts.get("train_runtime") or (newest - start if start is not None else None)
        return _share(float(runtimes.y.sum()), wall)

    @property
    def warning_counts(self) -> dict[str, int]:
        damaged = len(self.tb.corrupt_files)
        return {DAMAGED_EVENTS: damaged} if damaged else {}

    def tb_problems(self) -> list[str]:
        """What could not be read of the event files, for people."""
        return [f"{t.path}: {t.corrupt or t.damaged}" for t in self.tb.corrupt_files]


class TensorBoardReader(ScalarRunReader):
    """A folder of TensorBoard event files written by any tool: its scalar tags as series. TensorBoard's files
    carry no end: a folder that no process here holds open and that has not changed for ``STALL_AFTER`` is
    taken as ended (``finished``); while a process holds it, the one rule says ``running`` or ``stalled``."""

    def _facts(self, updated: float | None) -> dict:
        facts = super()._facts(updated)
        if not facts["ended"] and updated is not None and time.time() - updated > STALL_AFTER:
            facts["ended"] = not holders.held(self.path)
        return facts


class HfReader(ScalarRunReader):
    """A Hugging Face Trainer's output folder: its TensorBoard events (``runs/<date>_<host>/``, when
    ``report_to`` included TensorBoard) and its newest ``trainer_state.json`` (checkpoints, and the folder's
    own after ``save_state``). The events are the live history; the state adds the facts they lack (max
    steps, best checkpoint) and the history of a folder without events, or before its events began."""
    eval_advice = evalcost.HF_ADVICE

    def __init__(self, run_dir: str | Path, **how):
        super().__init__(run_dir, **how)
        self.state = HfStateTail(self.path, newest=NEWEST_ENTRIES)
        self._joins: dict[str, _Joined] = {}
        self._args_text: str | None = None
        self._args: dict = {}

    def tb_folder(self) -> Path:
        runs = self.path / "runs"  # the Trainer's default logging_dir; else any folder below the output
        return runs if runs.is_dir() else self.path

    def _poll_more(self) -> int:
        if not self.polls and self.tb.files:  # the events' newest part is a card and a row: the state next
            return 0
        return self.state.scalars.points if self.state.poll() else 0

    @property
    def loading(self) -> bool:
        return self.tb.loading or self.state.partial or (self.polls < 2 and bool(self.tb.files))

    def _joined(self) -> dict[str, Series]:
        older, newer = self.state.scalars.by["step"], self.tb.scalars.by["step"]
        out = {}
        for key in older.keys() | newer.keys():
            joined = self._joins.setdefault(key, _Joined()).update(older.get(key), newer.get(key))
            if joined is not None and len(joined):
                out[key] = joined
        return out

    def _trainer_args(self) -> dict:
        """The Trainer's arguments as its TensorBoard callback wrote them (text ``args``), parsed once."""
        text = self.tb.texts.get("args")
        if text != self._args_text:
            self._args_text = text
            try:
                args = json.loads(text) if text else {}
            except ValueError:
                args = {}
            self._args = args if isinstance(args, dict) else {}
        return self._args

    def _facts(self, updated: float | None) -> dict:
        facts = super()._facts(updated)
        st, args = self.state.state, self._trainer_args()
        if st is not None:
            # the Trainer logs its runtime as training ends (to its event files, and to a state saved after);
            # a folder without event files whose script saves no state after: its last checkpoint at max_steps
            facts["ended"] = (facts["ended"] or st.train_runtime is not None or not self.tb.files
                              and bool(st.max_steps and st.global_step and st.global_step >= st.max_steps))
            facts["step"] = max(facts["step"] or 0, st.global_step or 0) or facts["step"]
            facts["train_runtime"] = facts["train_runtime"] or st.train_runtime
        epochs = _positive(st.num_train_epochs if st else None) or _positive(args.get("num_train_epochs"))
        total = _positive(st.max_steps if st else None) or _positive(args.get("max_steps"))
        epoch = facts["epoch"] if facts["epoch"] is not None else (st.epoch if st else None)
        if total is None and epochs and epoch and facts["step"]:  # trained by epochs: steps per epoch so far
            total = round(facts["step"] / epoch * epochs)
        facts.update(total_steps=int(total) if total else None, num_epochs=epochs, epoch=epoch)
        return facts

    def _files(self) -> list[Path]:
        return super()._files() + [p for _, p in checkpoints(self.path)] + [self.path / STATE]

    def checkpoints(self) -> list[dict]:
        """``checkpoint-N`` folders, oldest step first: complete once its trainer_state.json is written (the
        Trainer writes it with the weights); best: the state's ``best_model_checkpoint``."""
        st = self.state.state
        best = Path(st.best_model_checkpoint).name if st is not None and st.best_model_checkpoint else None
        return [{"name": p.name, "step": step, "complete": (p / STATE).is_file(), "best": p.name == best,
                 "path": str(p)} for step, p in checkpoints(self.path)]

    def _eval_share(self) -> float | None:
        """With a Trainer state: its evaluations' runtimes (the whole history's) and the events' after its
        step, over the wall time from the writer's start (the logged runtime once ended); without one, the
        events' (``ScalarRunReader._eval_share``)."""
        st = self.state.state
        if st is None or not st.evaluations:
            return super()._eval_share()
        after = self.tb.scalars.by["step"].get(RUNTIME)
        seconds = st.eval_seconds + (float(after.y[after.x > (st.global_step or 0)].sum()) if after else 0.0)
        wall = self.facts.get("train_runtime")
        times = [s for s in self.tb.scalars.by["time"].values() if len(s)]
        if wall is None and times and self.facts.get("started_at") is not None:
            wall = max(float(s.x[-1]) for s in times) - self.facts["started_at"]
        return _share(seconds, wall)

    @property
    def warning_counts(self) -> dict[str, int]:
        out = super().warning_counts
        if self.state.error:
            out[UNREADABLE_STATE] = 1
        return out


class _Joined:
    """One metric: the Trainer state's points (up to its newest checkpoint) before the first point of its
    event files, then the event files' points; extended as the events grow, made again when either source's
    older part changes (a newer state, older events loaded)."""

    def __init__(self) -> None:
        self.series: Series | None = None
        self.key: tuple | None = None
        self.taken = 0

    def update(self, older: Series | None, newer: Series | None) -> Series | None:
        if newer is None or not len(newer):
            return older
        if older is None or not len(older) or older.x[0] >= newer.x[0]:
            return newer
        key = (id(older), len(older), id(newer), float(newer.x[0]))
        if key != self.key or len(newer) < self.taken:
            cut = int(np.searchsorted(older.x, newer.x[0], side="left"))
            self.series, self.key, self.taken = Series(older.x[:cut], older.y[:cut]), key, 0
        if self.taken < len(newer):
            self.series.extend(newer.x[self.taken:], newer.y[self.taken:])
            self.taken = len(newer)
        return self.series


def _share(seconds: float, wall: float | None) -> float | None:
    return min(1.0, seconds / wall) if wall and wall > 0 else None


def _last(s: Series | None) -> float | None:
    return float(s.y[-1]) if s is not None and len(s) else None


def _positive(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 else None

