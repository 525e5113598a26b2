"""The console's one background thread: it finds runs, tails them and samples GPUs.

Everything that touches the disk or NVML happens here, never on the UI thread.
Each round it polls every run's reader (only the bytes appended since the last
round), builds a small immutable ``RunView`` per run, and posts one
``RunsUpdated`` message with all of them. Backpressure: a new message is posted
only once the UI has handled the previous one (``ack``); rounds in between
update the views, and the next message carries the latest state, so a slow UI
skips frames instead of queueing them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from textual.message import Message

from kidconsole import rundir

METRICS = ("train/loss", "eval/loss", "eval/per", "eval/cer")


@dataclass(frozen=True)
class GpuView:
    index: int
    util: float | None  # percent
    mem_used: float | None  # bytes
    mem_total: float | None


@dataclass(frozen=True)
class RunView:
    """What the dashboard shows of one run, as of one watcher round."""

    key: str  # the run directory, as a string: unique across roots
    name: str
    path: Path
    state: str
    phase: Any = None
    phase_name: str | None = None
    step: int | None = None
    total_steps: int | None = None
    eta: float | None = None  # seconds
    samples_per_s: float | None = None
    gpus: tuple[GpuView, ...] = ()
    proc_gpu_mem: float | None = None  # bytes used by the run's processes
    last: dict[str, float | None] = field(default_factory=dict)
    best: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)  # what -> count
    has_predictions: bool = False
    test: dict[str, float] = field(default_factory=dict)  # the final test evaluation: per, cer, wer, n
    started_at: float | None = None
    revision: int = 0  # grows whenever the run's files brought something new

    @property
    def progress(self) -> float | None:
        if self.step is None or not self.total_steps:
            return None
        return min(1.0, self.step / self.total_steps)


class RunsUpdated(Message):
    """The watcher's latest views of every run, keyed by run directory."""

    def __init__(self, views: dict[str, RunView], gpus: tuple[GpuView, ...]):
        super().__init__()
        self.views = views
        self.gpus = gpus


def _system():
    from kidconsole.runs import system

    return system


def _default_find(roots: list[str]) -> list[Path]:
    from kidconsole.runs.discover import find_runs

    return find_runs(roots)


def _default_reader(path: Path):
    from kidconsole.runs.reader import RunReader

    return RunReader(path)


class Watcher:
    """Polls the runs under ``roots`` every ``interval`` seconds on its own thread, posting to ``target``.

    ``clock`` and ``system`` (an object with ``sample_gpus()`` and
    ``run_gpu_memory(pid, sid) -> {gpu: bytes}``) are injectable so tests and snapshots are deterministic.
    """

    def __init__(self, roots: list[str], target=None, *, interval: float = 1.0, discover_every: float = 5.0,
                 gpu_every: float = 2.0, clock: Callable[[], float] = time.time, system: Any = None,
                 find: Callable[[list[str]], list[Path]] | None = None,
                 make_reader: Callable[[Path], Any] | None = None):
        self.roots = list(roots)
        self.target = target
        self.interval = interval
        self.discover_every = discover_every
        self.gpu_every = gpu_every
        self.clock = clock
        self.system = system
        self.find = find or _default_find
        self.make_reader = make_reader or _default_reader
        self.readers: dict[str, Any] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.views: dict[str, RunView] = {}
        self.gpus: tuple[GpuView, ...] = ()
        self.errors: dict[str, str] = {}  # run key -> last error polling it
        self._revisions: dict[str, int] = {}
        self._last_discover = -1e18
        self._last_gpu = -1e18
        self._acked = threading.Event()
        self._acked.set()
        self._wake = threading.Event()
        self._stop = False
        self._dirty = True
        self._thread: threading.Thread | None = None

    # ---- thread control
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kidconsole-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def ack(self) -> None:
        """The UI handled the last message: the next round may post again."""
        self._acked.set()

    def wake(self, rediscover: bool = False) -> None:
        """Poll now instead of at the next tick (after a launch, a stop ...)."""
        if rediscover:
            self._last_discover = -1e18
        self._wake.set()

    def lock(self, key: str) -> threading.Lock:
        """Hold this while reading a reader's series from another thread."""
        return self.locks.setdefault(key, threading.Lock())

    def _loop(self) -> None:
        while not self._stop:
            self.poll_once()
            if self._dirty and self._acked.is_set() and self.target is not None:
                self._acked.clear()
                self._dirty = False
                self.target.post_message(RunsUpdated(dict(self.views), self.gpus))
            self._wake.wait(self.interval)
            self._wake.clear()

    # ---- one round
    def poll_once(self) -> dict[str, RunView]:
        now = self.clock()
        mono = time.monotonic()
        if mono - self._last_discover >= self.discover_every:
            self._last_discover = mono
            self._discover()
        if self.system is None:
            try:
                self.system = _system()
            except ImportError:
                self.system = False
        if mono - self._last_gpu >= self.gpu_every:
            self._last_gpu = mono
            gpus = self._sample_gpus()
            if gpus != self.gpus:
                self.gpus = gpus
                self._dirty = True
        views = {}
        for key, reader in list(self.readers.items()):
            try:
                with self.lock(key):
                    new = reader.poll()
                    if new:
                        self._revisions[key] = self._revisions.get(key, 0) + 1
                    view = self._view(key, reader, now)
                self.errors.pop(key, None)
            except Exception as e:  # a broken run must not stop the watcher: show it, keep going
                self.errors[key] = f"{type(e).__name__}: {e}"
                continue
            views[key] = view
        if views != self.views:
            self._dirty = True
        self.views = views
        return views

    def _discover(self) -> None:
        try:
            found = self.find(self.roots)
        except Exception as e:
            self.errors["<roots>"] = f"{type(e).__name__}: {e}"
            return
        keys = {str(p): p for p in found}
        for key, path in keys.items():
            if key not in self.readers:
                self.readers[key] = self.make_reader(path)
                self._dirty = True
        for key in set(self.readers) - keys.keys():
            del self.readers[key]
            self._dirty = True

    def _sample_gpus(self) -> tuple[GpuView, ...]:
        if not self.system:
            return ()
        try:
            samples = self.system.sample_gpus()
        except Exception:
            return ()
        return tuple(GpuView(int(_get(s, "index", i)), _get(s, "util", None), _get(s, "mem_used", None),
                             _get(s, "mem_total", None)) for i, s in enumerate(samples))

    def _view(self, key: str, reader: Any, now: float) -> RunView:
        summary = reader.summary
        status = reader.status or {}
        gpu_ids = status.get("gpus") or []
        gpus = tuple(g for g in self.gpus if g.index in gpu_ids)
        proc_mem = None
        pid = status.get("pid")
        if self.system and pid:
            try:
                per_gpu = self.system.run_gpu_memory(pid, status.get("sid"))
                proc_mem = float(sum(per_gpu.values())) if per_gpu else None
            except Exception:
                proc_mem = None
        metrics = {m: summary.get(m) or {} for m in METRICS}
        last = {m: v.get("last") for m, v in metrics.items()}
        best = {m: (v["best"], _int(v.get("best_step"))) for m, v in metrics.items() if v.get("best") is not None}
        return RunView(
            key=key, name=summary.get("name") or reader.name, path=Path(reader.path), state=reader.state(now=now),
            phase=summary.get("phase"), phase_name=summary.get("phase_name"),
            step=_int(summary.get("step")), total_steps=_int(summary.get("total_steps")),
            eta=summary.get("eta_s"), samples_per_s=summary.get("samples_per_s"),
            gpus=gpus, proc_gpu_mem=proc_mem, last=last, best=best,
            warnings=reader.warning_counts,
            started_at=summary.get("started_at"),
            has_predictions=(Path(reader.path) / rundir.PREDICTIONS).exists(),
            test=summary.get("test") or {},
            revision=self._revisions.get(key, 0),
        )


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _get(obj: Any, name: str, default: Any) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)
