"""What rank 0 writes to the run directory: events, status, decodes, predictions, heartbeats.

Every write goes through the run directory's records (``kidconsole.rundir``):
an event kind, a status key or a row field that the contract does not define,
or a value of the wrong type, fails here rather than in a reader. Other ranks
get a reporter that writes nothing (but its trace), so the loop calls it
unconditionally. The heartbeat thread keeps beating while the loop is busy
(a long evaluation), so readers can tell a slow run from a dead one; each beat
carries the step and the work done (batches, training and evaluating: ``counting``),
so readers can also tell a run that beats but no longer advances (a read blocked
on a hung mount) from one that works.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from kidconsole import rundir

T = TypeVar("T")


class Reporter:
    def __init__(self, run_dir: str | Path, active: bool):
        self.run_dir = Path(run_dir)
        self.active = active
        self.step = 0
        self.work = 0  # batches done this session (training and evaluating): the heartbeat's sign of progress
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.events = rundir.EventWriter(self.run_dir / rundir.EVENTS) if active else None
        self._decodes: rundir.JsonlWriter | None = None
        self._trace: rundir.JsonlWriter | None = None
        self.mirror = None  # kidconsole.mirror.Mirror when the config's report_to names targets

    def emit(self, kind: str, **fields) -> None:
        """One event of ``kind`` (``rundir.EV_*``) with its record's fields; mirrored (``report_to``) at the
        same time stamp."""
        if self.active:
            t = round(time.time(), 3)
            with self._lock:
                self.events.emit(kind, t=t, **fields)
            if self.mirror is not None and kind != rundir.EV_HEARTBEAT:  # heartbeats are not metrics
                self.mirror.event(kind, t, fields)  # guarded: a failing mirror warns and counts, never raises

    def counting(self, batches: Iterable[T]) -> Iterator[T]:
        """``batches`` as they come, each counted as work done (the heartbeat tells readers it advances)."""
        for batch in batches:
            self.work += 1
            yield batch

    def status(self, **fields) -> None:
        if self.active:
            rundir.update_status(self.run_dir, **fields)

    def decodes(self, rows: list[dict]) -> None:
        if not self.active:
            return
        if self._decodes is None:
            self._decodes = rundir.JsonlWriter(self.run_dir / rundir.DECODES, rundir.DecodeRow)
        for r in rows:
            self._decodes.write(r)

    def predictions(self, rows: list[dict]) -> None:
        """predictions.jsonl holds the last test evaluation only: rewritten whole, atomically."""
        if self.active:
            rundir.write_rows(self.run_dir / rundir.PREDICTIONS, rundir.PredictionRow, rows)

    def trace(self, rank: int, step: int, ids: list[str]) -> None:
        """Every rank appends the utterance ids of each micro-batch (train.trace_batches)."""
        if self._trace is None:
            self._trace = rundir.JsonlWriter(self.run_dir / rundir.trace_name(rank), rundir.TraceRow)
        self._trace.write({"step": step, "ids": ids})

    def start_heartbeat(self, every: float) -> None:
        if not self.active:
            return

        def beat():
            while not self._stop.wait(every):
                self.emit(rundir.EV_HEARTBEAT, step=self.step, work=self.work)
                rundir.update_status(self.run_dir, step=self.step)

        self._thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop_heartbeat()
        for w in (self.events, self._decodes, self._trace):
            if w is not None:
                w.close()
