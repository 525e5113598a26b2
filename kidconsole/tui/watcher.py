"""The console's one background thread: it finds runs, tails them and samples GPUs.

Everything that touches the disk or NVML happens here, never on the UI thread.
Each round it polls every run's reader (only the bytes appended since the last
round), builds a small immutable ``RunView`` per run, and posts one
``RunsUpdated`` message with all of them when something changed. Backpressure:
a newer ``RunsUpdated`` replaces one still queued (``Message.can_replace``), so
a slow UI skips to the latest state instead of working through old ones.

Screens and their workers read a run's history through the watcher's read
API (``config``, ``decodes``, ``downsample`` ...), which holds the run's lock
while the watcher thread may be extending its series; they never touch a
reader or a lock themselves.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from textual.message import Message

from kidconsole import rundir
from kidconsole.runs.snapshot import RunSnapshot, snapshot_fields


@dataclass(frozen=True)
class GpuView:
    index: int
    util: float | None  # percent
    mem_used: float | None  # bytes
    mem_total: float | None
    temp: float | None = None  # degrees C
    power: float | None = None  # watts


@dataclass(frozen=True)
class SystemView:
    """The machine as one run sees it: its processes, the host's memory, the disk its directory is on."""

    cpu: float | None = None  # percent of one core, summed over the run's processes (None: no process here)
    rss: float | None = None  # resident bytes of the run's processes
    host_mem_used: float | None = None
    host_mem_total: float | None = None
    disk_free: float | None = None  # bytes free on the filesystem of the run directory
    disk_total: float | None = None
    checkpoint_bytes: float | None = None  # size of the run's newest complete checkpoint

    @property
    def disk_short(self) -> bool:
        """True when the next checkpoint (as big as the last) would not fit on the run's disk."""
        return bool(self.disk_free is not None and self.checkpoint_bytes and self.disk_free < self.checkpoint_bytes)


@dataclass(frozen=True, kw_only=True)
class RunView(RunSnapshot):
    """What the dashboard shows of one run, as of one watcher round: its snapshot (``runs.snapshot``, the
    same as `run ls` renders) and the machine's numbers for it."""

    key: str  # the run directory, as a string: unique across roots
    gpus: tuple[GpuView, ...] = ()
    proc_gpu_mem: float | None = None  # bytes used by the run's processes
    system: SystemView | None = None
    revision: int = 0  # grows whenever the run's files brought something new


class RunsUpdated(Message):
    """The watcher's latest views of every run, keyed by run directory."""

    def __init__(self, views: dict[str, RunView], gpus: tuple[GpuView, ...]):
        super().__init__()
        self.views = views
        self.gpus = gpus

    def can_replace(self, message: Message) -> bool:
        # a newer snapshot of every run makes this one worthless: the UI handles the newest only
        return isinstance(message, RunsUpdated)


@dataclass(frozen=True)
class SeriesTail:
    """A series' points from ``start`` on, copied: ``length`` points in all, ``x_before`` the x of point
    ``start - 1`` (to notice a series rewritten since, as after a resume)."""

    length: int
    x_before: float | None
    x: np.ndarray
    y: np.ndarray


_EMPTY = np.zeros(0)


def _system():
    from kidconsole.runs import system

    return system


def _default_find(roots: list[str]) -> list[Path]:
    from kidconsole.runs.discover import find_runs

    return find_runs(roots)


def _default_reader(path: Path):
    from kidconsole.runs.life import open_run

    return open_run(path)


class Watcher:
    """Polls the runs under ``roots`` every ``interval`` seconds on its own thread, posting to ``target``.

    ``clock`` and ``system`` (an object like ``kidconsole.runs.system``: ``sample_gpus()``,
    ``run_gpu_memory(pid, sid)``, ``run_process_usage(pid, sid)``, ``host_memory()``, ``disk_usage(path)``,
    ``folder_bytes(path)``; what it lacks is not shown) are injectable so tests and snapshots are deterministic.
    """

    def __init__(self, roots: list[str], target=None, *, interval: float = 1.0, discover_every: float = 5.0,
                 gpu_every: float = 2.0, idle_every: float = 5.0, scheduler_every: float = 5.0, clock: Callable[[], float] = time.time, system: Any = None,
                 find: Callable[[list[str]], list[Path]] | None = None,
                 make_reader: Callable[[Path], Any] | None = None):
        self.roots = list(roots)
        self.target = target
        self.interval = interval
        self.discover_every = discover_every
        self.gpu_every = gpu_every
        self.idle_every = idle_every
        self.scheduler_every = scheduler_every
        self._last_scheduler = -1e18
        self.clock = clock
        self.system = system
        self.find = find or _default_find
        self.make_reader = make_reader or _default_reader
        self._readers: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self.views: dict[str, RunView] = {}
        self.gpus: tuple[GpuView, ...] = ()
        self._revisions: dict[str, int] = {}
        self._last_discover = -1e18
        self._last_gpu = -1e18
        self._systems: dict[str, SystemView] = {}
        self._table: Any = None  # the system's process table of the current sampling round
        self._built: dict[str, tuple[float, Any]] = {}  # run -> (when its view was built, the status it read)
        self._checkpoints: dict[str, tuple[int, Any]] = {}  # run -> (checkpoints/ mtime, its newest complete)
        self._checkpoint_bytes: dict[str, float] = {}  # complete checkpoint folder -> bytes (they never change)
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

    def wake(self, rediscover: bool = False) -> None:
        """Poll now instead of at the next tick (after a launch, a stop ...)."""
        if rediscover:
            self._last_discover = -1e18
        self._wake.set()

    def _lock(self, key: str) -> threading.Lock:
        return self._locks.setdefault(key, threading.Lock())

    def _loop(self) -> None:
        while not self._stop:
            self.poll_once()
            if self._dirty and self.target is not None:
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
        host = None
        if mono - self._last_gpu >= self.gpu_every:
            self._last_gpu = mono
            gpus = self._sample_gpus()
            if gpus != self.gpus:
                self.gpus = gpus
                self._dirty = True
            host = self._call("host_memory") or (None, None)
            self._table = self._call("process_table")  # one pass over the processes for every run
        polled = {}
        for key, reader in list(self._readers.items()):
            try:
                with self._lock(key):
                    polled[key] = reader.poll()
            except Exception:  # a broken run must not stop the watcher: skip it this round, keep going
                continue
        if mono - self._last_scheduler >= self.scheduler_every:
            self._last_scheduler = mono
            self._sample_schedulers()
        views = {}
        for key, reader in list(self._readers.items()):
            if key not in polled:
                continue
            try:
                with self._lock(key):
                    new = polled[key]
                    if new:
                        self._revisions[key] = self._revisions.get(key, 0) + 1
                    view = self._reused(key, reader, new, mono)
                    if view is None:
                        view = self._view(key, reader, now)
                        self._built[key] = (mono, reader.status)
                if host is not None:
                    self._systems[key] = self._sample_system(reader, view, host)
                view = replace(view, system=self._systems.get(key))
            except Exception:  # a broken run must not stop the watcher: skip it this round, keep going
                continue
            views[key] = view
        if views != self.views:
            self._dirty = True
        self.views = views
        return views

    def _sample_schedulers(self) -> None:
        """What the runs' kinds rest their state on from outside (a Slurm job's state), sampled here, on
        this thread's schedule: a card's state reads the sample and never waits on a command."""
        from kidconsole.runs.life import sample

        try:
            sample([(Path(r.path), r.status) for r in self._readers.values()])
        except Exception:  # no scheduler answers: the states stay the runs' own
            pass

    def _discover(self) -> None:
        try:
            found = self.find(self.roots)
        except Exception:  # an unreadable root: keep the runs found so far
            return
        keys = {str(p): p for p in found}
        for key, path in keys.items():
            if key not in self._readers:
                self._readers[key] = self.make_reader(path)
                self._dirty = True
        for key in set(self._readers) - keys.keys():
            del self._readers[key]
            for cache in (self._systems, self._built, self._checkpoints):
                cache.pop(key, None)
            self._dirty = True

    def _sample_gpus(self) -> tuple[GpuView, ...]:
        if not self.system:
            return ()
        try:
            samples = self.system.sample_gpus()
        except Exception:
            return ()
        return tuple(GpuView(int(_get(s, "index", i)), _get(s, "util", None), _get(s, "mem_used", None),
                             _get(s, "mem_total", None), _get(s, "temp", None), _get(s, "power", None))
                     for i, s in enumerate(samples))

    def _call(self, name: str, *args) -> Any:
        """``system.name(*args)``; None when the sampler lacks it or it fails (the console shows a dash)."""
        fn = getattr(self.system, name, None) if self.system else None
        if fn is None:
            return None
        try:
            return fn(*args)
        except Exception:
            return None

    def _reused(self, key: str, reader: Any, new: int, mono: float) -> RunView | None:
        """The run's previous view when nothing can have changed it: no new lines, the same status, and
        either an ended run or a live one rebuilt less than ``idle_every`` ago (a quiet run's state changes
        with time, stalled or interrupted, but not from one second to the next). Keeps many runs cheap."""
        prev, built = self.views.get(key), self._built.get(key)
        if new or prev is None or built is None or reader.status is not built[1]:
            return None
        if prev.state in rundir.FINAL_STATES or mono - built[0] < self.idle_every:
            return prev
        return None

    def _newest_checkpoint(self, key: str, path: Path) -> Path | None:
        """The newest complete checkpoint, listed again only when checkpoints/ changed."""
        folder = path / rundir.CHECKPOINTS
        try:
            mtime = folder.stat().st_mtime_ns
        except OSError:
            return None
        seen = self._checkpoints.get(key)
        if seen is None or seen[0] != mtime:
            seen = self._checkpoints[key] = (mtime, rundir.newest_checkpoint(folder))
        return seen[1]

    def _round_table(self) -> tuple:
        """The process table as an extra argument to the samplers, when the system has one."""
        return () if self._table is None else (self._table,)

    def _sample_system(self, reader: Any, view: RunView, host: tuple) -> SystemView:
        status = reader.status
        pid = status.pid
        cpu = rss = None
        if isinstance(pid, int) and pid > 0 and view.state in rundir.STOPPABLE_STATES:
            usage = self._call("run_process_usage", pid, status.sid, *self._round_table())
            if usage is not None:
                cpu, rss = float(usage[0]), float(usage[1])
        disk = self._call("disk_usage", view.path) or (None, None)
        newest = self._newest_checkpoint(view.key, view.path)
        ckpt = None
        if newest is not None:
            ckpt = self._checkpoint_bytes.get(str(newest))
            if ckpt is None:
                ckpt = self._call("folder_bytes", newest)
                if ckpt is not None:
                    self._checkpoint_bytes[str(newest)] = ckpt
        return SystemView(cpu=cpu, rss=rss, host_mem_used=host[0], host_mem_total=host[1], disk_free=disk[0],
                          disk_total=disk[1], checkpoint_bytes=ckpt)

    def _view(self, key: str, reader: Any, now: float) -> RunView:
        status = reader.status
        gpu_ids = status.gpus or []
        proc_mem = None
        if self.system and status.pid:
            try:
                per_gpu = self.system.run_gpu_memory(status.pid, status.sid, *self._round_table())
                proc_mem = float(sum(per_gpu.values())) if per_gpu else None
            except Exception:
                proc_mem = None
        return RunView(key=key, gpus=tuple(g for g in self.gpus if g.index in gpu_ids), proc_gpu_mem=proc_mem,
                       revision=self._revisions.get(key, 0), **snapshot_fields(reader, now=now))

    # ---- the read API: any thread may call these; each holds the run's lock while it reads
    def _read(self, key: str, read: Callable[[Any], Any], default: Any = None) -> Any:
        reader = self._readers.get(key)
        if reader is None:
            return default
        with self._lock(key):
            return read(reader)

    def config(self, key: str) -> dict:
        """The run's config.yaml as plain data ({} when absent or unreadable)."""
        return self._read(key, lambda r: r.config.model_dump() if r.config else {}, {})

    def log_tail(self, key: str, n: int) -> list[str]:
        return self._read(key, lambda r: r.log_tail(n), [])

    def checkpoints(self, key: str) -> list[dict]:
        return self._read(key, lambda r: r.checkpoints(), [])

    def warnings(self, key: str, n: int) -> list[dict]:
        """The newest ``n`` warning events, oldest first."""
        return self._read(key, lambda r: list(r.warnings)[-n:], [])

    def decodes(self, key: str) -> list[dict]:
        return self._read(key, lambda r: list(r.decodes()), [])

    def series_names(self, key: str) -> list[str]:
        """The run's chart series ("train/loss", "eval/per_age/5-6", "train/lr:head" ...)."""
        return self._read(key, lambda r: list(r.series), [])

    def span(self, key: str, metric: str, x_axis: str) -> tuple[float, float] | None:
        """The first and last x of a series; None when it has no point."""
        def read(r):
            s = r.series_by(x_axis).get(metric)
            return (float(s.x[0]), float(s.x[-1])) if s is not None and len(s) else None
        return self._read(key, read)

    def downsample(self, key: str, metric: str, x_axis: str, n_buckets: int, x_min: float, x_max: float
                   ) -> tuple[list[float], list[float], list[float]]:
        """``Series.downsample`` of one series: bucket centres, minima and maxima."""
        def read(r):
            s = r.series_by(x_axis).get(metric)
            return s.downsample(n_buckets, x_min, x_max) if s is not None else ([], [], [])
        return self._read(key, read, ([], [], []))

    def tail(self, key: str, metric: str, x_axis: str, start: int) -> SeriesTail:
        """The points of a series from index ``start`` on (for work that extends as the series grows)."""
        def read(r):
            s = r.series_by(x_axis).get(metric)
            if s is None:
                return SeriesTail(0, None, _EMPTY, _EMPTY)
            n = len(s)
            before = float(s.x[start - 1]) if 0 < start <= n else None
            return SeriesTail(n, before, s.x[start:].copy(), s.y[start:].copy())
        return self._read(key, read, SeriesTail(0, None, _EMPTY, _EMPTY))


def _get(obj: Any, name: str, default: Any) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)
