"""Hugging Face Trainer output folders read live: ``trainer_state.json`` into chart series and the run's facts.

The Trainer writes its state into each ``checkpoint-N/`` it saves (the history up to N) and, when the script
calls ``save_state()``, into the output folder at the end. The newest of them holds the whole history
(``log_history``: one entry per logging step and per evaluation), so it is read whole, and read again only
when a newer one appears. Keys are named by the Trainer's own rule for TensorBoard (scalars.hf_key), so a
folder read from its state and from its event files charts the same. Bounded: a state over
``MAX_STATE_BYTES`` is refused with the reason, never read.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from kidconsole.bounded import open_regular
from kidconsole.runs.scalars import ScalarSeries, hf_key

STATE = "trainer_state.json"
CHECKPOINT = re.compile(r"checkpoint-(\d+)")
MAX_STATE_BYTES = 256 << 20  # a 300,000-step history logged every step is about 60 MB


@dataclass
class HfState:
    """The facts of one ``trainer_state.json``; None where the file does not say."""
    path: Path
    global_step: int | None = None
    max_steps: int | None = None
    epoch: float | None = None
    num_train_epochs: int | None = None
    best_metric: float | None = None
    best_global_step: int | None = None
    best_model_checkpoint: str | None = None
    logging_steps: int | None = None
    eval_steps: int | None = None
    save_steps: int | None = None
    train_batch_size: int | None = None
    train_runtime: float | None = None   # seconds, in the final entry once training ended
    eval_seconds: float = 0.0            # the evaluations' runtimes, added up
    evaluations: int = 0
    entries: int = 0
    skipped: int = 0                     # log entries that are not objects, or values that are not numbers
    metrics: set[str] = field(default_factory=set)


def checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``checkpoint-N`` folders by step."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = [(int(m.group(1)), Path(e.path)) for e in entries
             if (m := CHECKPOINT.fullmatch(e.name)) and e.is_dir(follow_symlinks=False)]
    return sorted(found)


def state_files(folder: str | Path) -> list[Path]:
    """Every ``trainer_state.json`` of an output folder: its own and its checkpoints'."""
    folder = Path(folder)
    files = [folder / STATE] + [p / STATE for _, p in checkpoints(folder)]
    return [p for p in files if p.is_file()]


def newest_state(folder: str | Path) -> Path | None:
    """The state written last (the final one, else the newest checkpoint's); of states written at the same
    time (copied, synced), the highest checkpoint's, the folder's own above them."""
    stamped = []
    for p in state_files(folder):
        m = CHECKPOINT.fullmatch(p.parent.name) if p.parent != Path(folder) else None
        try:
            stamped.append((p.stat().st_mtime_ns, int(m.group(1)) if m else math.inf, str(p)))
        except OSError:
            pass
    return Path(max(stamped)[2]) if stamped else None


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def parse_state(path: Path, data: bytes, newest: int | None = None) -> tuple[HfState, ScalarSeries]:
    """A state file's facts and its history as series (``newest``: only the newest entries as series, the
    facts of all); raises ValueError when it is not a Trainer state."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:  # Python's json.dump (the Trainer's) writes NaN and Infinity, which orjson refuses
            obj = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise ValueError(f"not JSON ({e})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("log_history"), list):
        raise ValueError("no log_history: not a Trainer state")
    st = HfState(path)
    for name in ("global_step", "max_steps", "num_train_epochs", "best_global_step", "logging_steps", "eval_steps",
                 "save_steps", "train_batch_size"):
        setattr(st, name, _int(obj.get(name)))
    st.epoch, st.best_metric = _number(obj.get("epoch")), _number(obj.get("best_metric"))
    best = obj.get("best_model_checkpoint")
    st.best_model_checkpoint = best if isinstance(best, str) else None
    # one pass, as tight as Python allows (a 300,000-step history is 30,000 entries or more)
    columns: dict[str, tuple[list[int], list[float]]] = {}
    keys: dict[str, tuple[list[int], list[float]] | None] = {"step": None}
    entries = skipped = 0
    history = obj["log_history"]
    for entry in history if newest is None else history[-newest:]:
        step = entry.get("step") if type(entry) is dict else None
        if type(step) is not int:
            skipped += 1
            continue
        entries += 1
        for name, v in entry.items():
            kind = type(v)
            if kind is not float and kind is not int or kind is float and v - v != 0.0:  # not a finite number
                skipped += 1
                continue
            col = keys.get(name, False)
            if col is False:
                col = keys[name] = columns.setdefault(hf_key(name), ([], []))
            if col is not None:
                col[0].append(step)
                col[1].append(v)
    st.entries, st.skipped = entries, skipped
    runtimes = [_number(e.get("eval_runtime")) for e in history if type(e) is dict and "eval_runtime" in e]
    st.eval_seconds, st.evaluations = float(sum(r for r in runtimes if r is not None)), len(runtimes)
    st.train_runtime = next((_number(e["train_runtime"]) for e in reversed(history)
                             if type(e) is dict and "train_runtime" in e), None)
    series = ScalarSeries()
    for key, (steps, values) in columns.items():
        series.add(key, steps, values)
    st.metrics = set(columns)
    return st, series


class HfStateTail:
    """An output folder's newest state, read again when a newer one appears; never raises: what cannot be
    read is said in ``error`` and the last good reading stays. ``newest``: the first reading takes only the
    newest entries as series (``partial``), the next poll all of them (a long history's row is ready at once)."""

    def __init__(self, folder: str | Path, newest: int | None = None):
        self.folder = Path(folder)
        self.newest = newest
        self.partial = False
        self.state: HfState | None = None
        self.scalars = ScalarSeries()
        self.error: str | None = None
        self._key: tuple | None = None

    def poll(self) -> bool:
        """True when a newer state was read."""
        path = newest_state(self.folder)
        if path is None:
            return False
        try:
            st = path.stat()
        except OSError:
            return False
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key == self._key and not self.partial:
            return False
        newest = self.newest if key != self._key and self._key is None else None  # the first reading only
        self._key = key  # a half-written state is tried again once it changes
        try:
            if st.st_size > MAX_STATE_BYTES:
                raise ValueError(f"{st.st_size:,} bytes, over the {MAX_STATE_BYTES:,}-byte limit")
            with open_regular(path) as f:  # a FIFO would block the console's watcher for good
                data = f.read(MAX_STATE_BYTES + 1)
            self.state, self.scalars = parse_state(path, data, newest)
        except (OSError, ValueError, OverflowError) as e:  # overflow: an integer no float holds
            self.error = f"{path}: {e.strerror if isinstance(e, OSError) else e}"
            self.partial = False
            return False
        self.error = None
        self.partial = newest is not None and self.state.entries >= newest
        return True
