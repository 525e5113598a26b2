"""The run directory: the only contract between the console and the trainers.

Schema in docs/run-directory.md. This module holds the file names and the
writers (events appended a line at a time, status rewritten atomically);
the live readers live in ``kidconsole.runs``.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CONFIG = "config.yaml"
STATUS = "status.json"
EVENTS = "events.jsonl"
DECODES = "decodes.jsonl"
PREDICTIONS = "predictions.jsonl"
STDOUT = "stdout.log"
CHECKPOINTS = "checkpoints"
EXPORTS = "exports"
COMPLETE = "COMPLETE"  # marker file inside a checkpoint folder once it is whole
# exports/<kind>/ of a scored export (onnx-fp32, onnx-int8 and the PyTorch reference torch-fp32): a run
# directory of its own, plus what the export measured and, for ONNX, the model
EXPORT_RECORD = "export.json"
EXPORTS_TABLE = "exports.md"     # exports/exports.md: the table of every kind, rendered from their records
ONNX_MODEL = "model.onnx"
EXPORT_LOG = "export.log"        # exports/export.log: the output of an export started in the background

# States written to status.json. "stalled" and "interrupted" are never written:
# readers derive them (no heartbeat for a while; process gone without a final state).
STARTING, RUNNING, EVALUATING = "starting", "running", "evaluating"
STOPPED, FINISHED, FAILED = "stopped", "finished", "failed"
STALLED, INTERRUPTED = "stalled", "interrupted"
LIVE_STATES = (STARTING, RUNNING, EVALUATING)
FINAL_STATES = (STOPPED, FINISHED, FAILED)

# Event kinds in events.jsonl (fields per kind in docs/run-directory.md).
EV_START, EV_TRAIN, EV_EVAL, EV_PHASE = "start", "train", "eval", "phase"
EV_CHECKPOINT, EV_WARNING, EV_HEARTBEAT, EV_TEST, EV_END = "checkpoint", "warning", "heartbeat", "test", "end"


def _clean(v: Any) -> Any:
    # JSON has no NaN/inf: write them as null so every reader can parse the line
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class JsonlWriter:
    """Append-only JSONL, one object a line, flushed per line."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, obj: dict) -> None:
        line = json.dumps({k: _clean(v) for k, v in obj.items()}, ensure_ascii=False, separators=(",", ":"))
        self._fh.write(line + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class EventWriter(JsonlWriter):
    """events.jsonl: every event carries its time ``t`` (unix seconds) and ``kind``."""

    def emit(self, kind: str, **fields: Any) -> None:
        self.write({"t": round(time.time(), 3), "kind": kind, **fields})


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


@contextmanager
def _status_lock(run_dir: Path):
    # launcher, supervisor and trainer all update status.json: serialise them
    with open(run_dir / ".status.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_status(run_dir: str | Path) -> dict:
    """status.json as a dict; {} when absent or unreadable (mid-rename never shows: writes are atomic)."""
    try:
        return json.loads((Path(run_dir) / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def update_status(run_dir: str | Path, **fields: Any) -> dict:
    """Merge fields into status.json atomically; returns the new status."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _status_lock(run_dir):
        status = read_status(run_dir)
        status.update({k: _clean(v) for k, v in fields.items()})
        status["updated_at"] = round(time.time(), 3)
        status.setdefault("host", socket.gethostname())
        atomic_write_text(run_dir / STATUS, json.dumps(status, ensure_ascii=False, indent=1))
    return status
