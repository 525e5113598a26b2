"""RunReader: one run directory read live - events tailed into chart series, status, summary.

A run's history can be a million events. The first ``poll`` reads only the
newest part (``initial_bytes``), so the first chart, a card and a `run ls` row
are ready at once however many long runs there are; each later ``poll`` reads
what was appended and loads up to ``backfill_bytes`` of older history,
prepending it, until the whole file is in (``loading`` turns False). Every byte
is parsed once; after the history is in, a poll costs only the new bytes.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kidconsole.runs.augment_counts import applied_counts
from kidconsole import rundir
from kidconsole.bounded import open_regular
from kidconsole.rundir.records import Status
from kidconsole.rundir.series_names import BUCKET_FIELDS, EVAL_FIELDS, TRAIN_FIELDS, lr_group_metric
from kidconsole.runs import evalcost
from kidconsole.runs import liveness
from kidconsole.runs import state as run_state
from kidconsole.runs.logs import log_tail
from kidconsole.runs.series import Series
from kidconsole.runs.tail import JsonlTail, line_start_at_or_after, read_range

if TYPE_CHECKING:
    from kidconsole.config import RunConfig

AXES = ("step", "samples", "time")
SERIES_KEYS = tuple(f"train/{f}" for f in TRAIN_FIELDS) + tuple(f"eval/{f}" for f in EVAL_FIELDS)
SUMMARY_METRICS = ("train/loss", "eval/loss", "eval/per", "eval/cer", "eval/wer")
MAX_DECODES = 5000
MAX_WARNINGS = 5000


class RunReader:
    def __init__(self, run_dir: str | Path, *, initial_bytes: int = 256 << 10, backfill_bytes: int = 8 << 20):
        self.path = Path(run_dir)
        self.name = self.path.name
        self.initial_bytes = initial_bytes
        self.backfill_bytes = backfill_bytes
        self._status: Status = Status()
        self._status_key: tuple | None = None
        self._config: RunConfig | None = None
        self._config_key: tuple | None = None
        self._decodes_tail = JsonlTail(self.path / rundir.DECODES)
        self._decodes: deque[dict] = deque(maxlen=MAX_DECODES)
        self._reset_history()

    # ---- events -------------------------------------------------------------
    def _reset_history(self) -> None:
        self._by: dict[str, dict[str, Series]] = {a: {} for a in AXES}
        self._events: JsonlTail | None = None
        self._backfill_end = 0       # history still to load: bytes [0, _backfill_end)
        self._backfill_bad = 0
        self._unusable = 0           # parsed lines that do not fit their event's record
        self._pending: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}  # older chunks, newest first
        self._pending_points = 0
        self.n_events = 0
        self.warnings: deque[dict] = deque(maxlen=MAX_WARNINGS)
        self._warning_total = 0
        self._warn_counts: dict[str, int] = {}
        self._last: dict[str, dict] = {}      # the newest event of each kind
        self._first_t: float | None = None
        self._last_t: float | None = None
        self._progress_t: float | None = None  # the newest event that showed progress (not a heartbeat in place)
        self._beat: tuple | None = None          # (step, work) of the newest heartbeat or train event
        self._best_checkpoint: str | None = None  # name in the newest checkpoint event marked best
        self._rate: deque[tuple[float, float]] = deque(maxlen=200)  # (t, step) of recent train events

    @property
    def series(self) -> dict[str, Series]:
        """Chart series keyed like "train/loss", "eval/per", with x = step."""
        return self._by["step"]

    def series_by(self, x_axis: str = "step") -> dict[str, Series]:
        """The same series against "step", "samples" (utterances seen) or "time" (unix seconds)."""
        if x_axis not in self._by:
            raise ValueError(f"x axis must be one of {', '.join(AXES)}, not {x_axis!r}")
        return self._by[x_axis]

    @property
    def loading(self) -> bool:
        """True while older history is still being loaded."""
        return self._backfill_end > 0

    @property
    def loaded_fraction(self) -> float:
        size = self._events.offset if self._events else 0
        return 1.0 if not size else 1.0 - self._backfill_end / size

    @property
    def bad_lines(self) -> int:
        """Lines skipped: not JSON objects, or not fitting their event's record (``rundir.event_problem``)."""
        return (self._events.bad_lines if self._events else 0) + self._backfill_bad + self._unusable

    @property
    def warning_counts(self) -> dict[str, int]:
        """Warnings per ``what``: the running ``count`` the trainer writes, else the number of events."""
        return dict(self._warn_counts)

    def _open_events(self) -> None:
        path = self.path / rundir.EVENTS
        try:
            size = path.stat().st_size
        except OSError:
            return
        start = line_start_at_or_after(path, max(0, size - self.initial_bytes))
        self._events = JsonlTail(path, offset=start)
        self._backfill_end = start

    def poll(self) -> int:
        """Read what is new (and a slice of older history while loading); returns the events read."""
        self._read_status()
        n = self._poll_decodes()
        opened = self._events is None
        if opened:
            self._open_events()
            if self._events is None:
                return n
        resets = self._events.resets
        events = self._events.read_new()
        if self._events.resets != resets:  # truncated or replaced: start over, nothing counted twice
            tail = self._events
            self._reset_history()
            self._events = tail
        self._apply(events, older=False)
        n += len(events)
        if self._backfill_end > 0 and not opened:  # the first poll: the newest part only
            n += self._backfill()
        return n

    def load_all(self) -> int:
        """Poll until the whole history is loaded."""
        n = self.poll()
        while self.loading:
            n += self.poll()
        return n

    def _backfill(self) -> int:
        path = self.path / rundir.EVENTS
        end = self._backfill_end
        start = line_start_at_or_after(path, max(0, end - self.backfill_bytes))
        if start >= end:  # one line longer than the slice: take it from its start
            start = 0 if end <= self.backfill_bytes else self._line_start_before(path, end)
        events, bad = read_range(path, start, end)
        self._backfill_bad += bad
        self._backfill_end = start
        self._apply(events, older=True)
        # older chunks join the series in one prepend per doubling: loading stays linear overall
        loaded = sum(len(s) for s in self._by["step"].values())
        if start == 0 or self._pending_points >= loaded:
            self._merge_pending()
        return len(events)

    def _merge_pending(self) -> None:
        for (axis, key), chunks in self._pending.items():
            xs = np.concatenate([c[0] for c in reversed(chunks)])
            ys = np.concatenate([c[1] for c in reversed(chunks)])
            self._by[axis].setdefault(key, Series()).prepend(xs, ys)
        self._pending.clear()
        self._pending_points = 0

    @staticmethod
    def _line_start_before(path: Path, end: int) -> int:
        with open_regular(path) as fh:
            pos = end - 1
            while pos > 0:
                lo = max(0, pos - (1 << 16))
                fh.seek(lo)
                i = fh.read(pos - lo).rfind(b"\n")
                if i >= 0:
                    return lo + i + 1
                pos = lo
            return 0

    def _apply(self, events: list[dict], older: bool) -> None:
        """Fold events (in file order) into series and summary state; ``older``: history before what is in.
        Events that do not fit their record are dropped first and counted in ``bad_lines``."""
        if not events:
            return
        trains, evals, eval_samples, warnings, others = [], [], [], [], []
        samples = None  # utterances seen at the last train event: the x of an eval on the samples axis
        last = {}
        for ev in events:
            kind = ev.get("kind")
            if kind == rundir.EV_TRAIN:
                trains.append(ev)
                samples = ev.get("samples", samples)
            elif kind == rundir.EV_EVAL:
                evals.append(ev)
                eval_samples.append(samples)
            else:
                others.append(ev)
                if kind == rundir.EV_WARNING:
                    warnings.append(ev)
            if type(kind) is str:
                last[kind] = ev
        # the bulk kinds are checked column by column, the rest one by one
        train_cols, bad = rundir.event_columns(rundir.EV_TRAIN, trains) if trains else ({}, [])
        eval_cols, bad_evals = rundir.event_columns(rundir.EV_EVAL, evals) if evals else ({}, [])
        unusable = {id(trains[i]) for i in bad} | {id(evals[i]) for i in bad_evals}
        unusable |= {id(ev) for ev in others if rundir.event_problem(ev)}
        if unusable:
            self._unusable += len(unusable)
            self._apply([ev for ev in events if id(ev) not in unusable], older)
            return
        for cols, prefix, fields, samples_col in (
            (train_cols, "train/", TRAIN_FIELDS, None), (eval_cols, "eval/", EVAL_FIELDS, eval_samples)
        ):
            if not cols:
                continue
            xs = {
                "step": _floats(cols["step"]),
                "samples": _floats(cols["samples"] if samples_col is None else samples_col),
                "time": _floats(cols["t"]),
            }
            # (series, indices of the events that carry it or None for all, values)
            found = [(prefix + f, None, _floats(cols[f])) for f in fields]
            if prefix == "eval/":
                found += [(key, None, ys) for key, ys in _bucket_columns(cols).items()]
            if prefix == "train/":
                found += _group_lr_series(cols)
            for key, at, ys in found:
                if np.isnan(ys).all():
                    continue
                for axis, x in xs.items():
                    x = x if at is None else x[at]
                    if older:
                        self._pending.setdefault((axis, key), []).append((x, ys))
                        self._pending_points += len(ys)
                    else:
                        self._by[axis].setdefault(key, Series()).extend(x, ys)
        for ev in warnings:
            what = str(ev.get("what", "warning"))
            count = ev.get("count")
            seen = self._warn_counts.get(what, 0)
            self._warn_counts[what] = max(seen, count) if isinstance(count, int) else seen + 1
        self._warning_total += len(warnings)
        if older:
            if self._progress_t is None:  # the newest history held no progress: the older may
                self._track_progress(events, older=True)
            room = MAX_WARNINGS - len(self.warnings)
            if room > 0:
                self.warnings.extendleft(reversed(warnings[-room:]))
            for kind, ev in last.items():
                self._last.setdefault(kind, ev)
            if self._best_checkpoint is None:
                self._best_checkpoint = _best_checkpoint(others)
            self._first_t = _num(events[0].get("t"), self._first_t)
        else:
            self._track_progress(events)
            self.warnings.extend(warnings)
            self._last.update(last)
            self._best_checkpoint = _best_checkpoint(others) or self._best_checkpoint
            self._rate.extend((e["t"], e["step"]) for e in trains[-self._rate.maxlen:]
                              if isinstance(e.get("t"), (int, float)) and isinstance(e.get("step"), (int, float)))
            if self._first_t is None:
                self._first_t = _num(events[0].get("t"), None)
            self._last_t = _num(events[-1].get("t"), self._last_t)
        self.n_events += len(events)

    def _track_progress(self, events: list[dict], older: bool = False) -> None:
        """The time of the newest event that shows progress: any event but a heartbeat, or a heartbeat whose
        step or work differs from the heartbeat before it (a run that only beats, in place, makes none).
        ``older``: history before what is in (read only while no progress was found in the newer)."""
        beat = None if older else self._beat
        found = None
        for ev in events:
            t = ev.get("t")
            if not isinstance(t, (int, float)):
                continue
            if ev.get("kind") == rundir.EV_HEARTBEAT:
                key = (ev.get("step"), ev.get("work"))
                if key != beat:
                    found = t
                beat = key
            else:
                found = t
        if found is not None:
            self._progress_t = found if self._progress_t is None else max(self._progress_t, found)
        if not older:
            self._beat = beat

    def last_progress(self) -> float | None:
        """When the run last showed progress, on the same clock as ``last_sign_of_life`` (None before any): the
        time between its newest event and the newest that showed progress is measured on the writer's clock
        (both are its events), and taken back from the newest sign of life, so a writer whose clock is off
        (another host) is judged alike."""
        if self._progress_t is None or self._last_t is None:
            return None
        sign = self.last_sign_of_life()
        return None if sign is None else sign - max(0.0, self._last_t - self._progress_t)

    def fold(self, events: list[dict]) -> None:
        """Fold events of our kinds (dicts, in time order, newer than those in) read from elsewhere: a read-only
        kind's reader (kinds/base.py) turns its tool's files into these and its ``poll`` folds them."""
        self._apply(events, older=False)

    def _poll_decodes(self) -> int:
        resets = self._decodes_tail.resets
        new, _ = rundir.usable_rows(rundir.DecodeRow, self._decodes_tail.read_new())
        if self._decodes_tail.resets != resets:
            self._decodes.clear()
        self._decodes.extend(new)
        return len(new)

    def decodes(self) -> list[dict]:
        """Reference vs hypothesis samples, oldest first (the newest MAX_DECODES)."""
        return list(self._decodes)

    # ---- status, config, files ----------------------------------------------
    def _read_status(self) -> None:
        try:
            st = os.stat(self.path / rundir.STATUS)
        except OSError:
            return
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._status_key:
            status = rundir.read_status_record(self.path)
            if status:
                self._status, self._status_key = status, key

    @property
    def status(self) -> Status:
        """status.json as its typed record (the same object until the file changes)."""
        self._read_status()
        return self._status

    @property
    def end_event(self) -> dict | None:
        """The run's newest ``end`` event (None: none read)."""
        return self._last.get(rundir.EV_END)

    @property
    def config(self) -> RunConfig | None:
        """config.yaml as ``kidconsole.config.read_run_config`` reads it (None when absent or unreadable)."""
        path = self.path / rundir.CONFIG
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._config_key:
            from kidconsole.config import read_run_config  # pydantic: loaded when a config is first shown

            self._config, self._config_key = read_run_config(self.path), key
        return self._config

    def log_tail(self, n: int = 50) -> list[str]:
        """The last ``n`` lines of stdout.log (a progress bar's carriage returns keep its last state)."""
        return log_tail(self.path / rundir.STDOUT, n)

    def checkpoints(self) -> list[dict]:
        """Checkpoint folders (``rundir.checkpoint_folders``: never an unfinished ``.tmp-`` write),
        oldest step first: name, step, complete, best, path."""
        return [{"name": path.name, "step": step, "complete": complete, "best": path.name == self._best_checkpoint,
                 "path": str(path)}
                for step, path, complete in rundir.checkpoint_folders(self.path / rundir.CHECKPOINTS)]

    # ---- derived --------------------------------------------------------------
    def last_sign_of_life(self) -> float | None:
        """The latest of: last event time, events.jsonl mtime, status update."""
        times = [t for t in (self._last_t, liveness.last_sign(self.path, self._status)) if t is not None]
        return max(times) if times else None

    def state(self, now: float | None = None, stall_after: float = run_state.STALL_AFTER) -> str:
        """The run's state by the one rule (``life.state_of``): never a subprocess (a Slurm job's state is
        the one last sampled)."""
        from kidconsole.runs.life import state_of

        return state_of(self.path, self.status, end_event=self.end_event, last_sign=self.last_sign_of_life(),
                        last_progress=self.last_progress(), now=now, stall_after=stall_after)

    @property
    def summary(self) -> dict:
        status = self.status
        train = self._last.get(rundir.EV_TRAIN, {})
        phase_ev = self._last.get(rundir.EV_PHASE, {})
        step = _first(status.step, train.get("step"))
        total = _first(status.total_steps, train.get("total_steps"), phase_ev.get("total_steps"),
                       self._last.get(rundir.EV_START, {}).get("total_steps"))
        out: dict = {
            "name": status.name or self.name,
            "phase": _first(status.phase, train.get("phase"), phase_ev.get("phase")),
            "phase_name": phase_ev.get("name"),
            "step": step,
            "total_steps": total,
            "samples": train.get("samples"),
            "samples_per_s": train.get("samples_per_s"),
            "augmented": applied_counts(train),
            "eta_s": self._eta(step, total),
            "warnings": self._warning_total,
            "skipped": sum(self._warn_counts.get(w, 0) for w in rundir.SKIP_WARNINGS),
            "bad_lines": self.bad_lines,
            "events": self.n_events,
            "started_at": _first(status.started_at, self._first_t),
            "updated_at": self.last_sign_of_life(),
            "loading": self.loading,
            # the final test evaluation (per/cer/wer/n), once the run wrote it
            "test": {k: v for k, v in self._last.get(rundir.EV_TEST, {}).items()
                     if k in ("per", "cer", "wer", "n", "per_age") and v is not None},
            # a model scored on a manifest (a baseline, an export): a test, no training
            "scoring_only": status.trainer_module == rundir.SCORER
            or (rundir.EV_TEST in self._last and rundir.EV_TRAIN not in self._last),
            **self._eval_summary(step, total),
        }
        for key in SUMMARY_METRICS:
            s = self.series.get(key)
            last, best = (s.last, s.min_point()) if s is not None else (None, None)
            out[key] = {
                "last": last[1] if last else None, "last_step": last[0] if last else None,
                "best": best[1] if best else None, "best_step": best[0] if best else None,
            }
        return out

    def _eval_summary(self, step, total) -> dict:
        """The newest evaluation's cost (``evalcost.EvalCost``) and its PER per age group."""
        ev = self._last.get(rundir.EV_EVAL, {})
        evals = self.series.get("eval/per")
        steps = evals.x[-2:].tolist() if evals is not None else []
        seconds = _num(ev.get("eval_seconds"), None)
        left = evalcost.eval_time_left(steps, seconds, _num(step, None), _num(total, None))
        return {"eval_cost": evalcost.EvalCost(_num(ev.get("eval_share"), None), seconds, left),
                "per_age": ev.get("per_age") or {}}

    def _eta(self, step, total) -> float | None:
        if not isinstance(step, (int, float)) or not isinstance(total, (int, float)) or len(self._rate) < 2:
            return None
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return max(0.0, (total - step) * (t1 - t0) / (s1 - s0))


def _num(v, default):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            pass
    return default


def _best_checkpoint(events: list[dict]) -> str | None:
    for ev in reversed(events):
        if ev.get("kind") == rundir.EV_CHECKPOINT and ev.get("best") and ev.get("name"):
            return str(ev["name"])
    return None


def _group_lr_series(cols: dict[str, list]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(metric, indices of the train events that carry it, values) for each group of ``train.lr_groups``
    (a train event names its groups; a run without groups has none)."""
    by: dict[str, tuple[list[int], list[float]]] = {}
    for i, (names, lrs) in enumerate(zip(cols.get("lr_groups", ()), cols.get("group_lrs", ()))):
        if not names or not lrs:
            continue
        for name, lr in zip(names, lrs):
            at, ys = by.setdefault(lr_group_metric(name), ([], []))
            at.append(i)
            ys.append(lr)
    return [(m, np.array(at, dtype=np.int64), _floats(ys)) for m, (at, ys) in by.items()]


def _floats(col: list) -> np.ndarray:
    """A checked column as floats (NaN where missing or null)."""
    try:
        return np.array(col, dtype=float)
    except (TypeError, ValueError, OverflowError):  # not after event_columns: a safety net
        return np.array([_num(v, np.nan) for v in col], dtype=float)


def _bucket_columns(cols: dict[str, list]) -> dict[str, np.ndarray]:
    """The per-bucket eval fields as one float column per bucket ("eval/per_age/5-6"), NaN where an
    evaluation lacks the bucket."""
    out = {}
    for f in BUCKET_FIELDS:
        col = cols.get(f) or []
        labels = sorted({k for d in col if d for k in d})
        for label in labels:
            out[f"eval/{f}/{label}"] = np.array([_num(d.get(label), np.nan) if d else np.nan for d in col])
    return out


def _first(*vals):
    for v in vals:
        if v is not None:
            return v
    return None
