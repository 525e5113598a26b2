"""System samplers: GPUs through NVML, processes through psutil. Never raise on machines without GPUs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

_nvml = None          # the pynvml module once initialised
_nvml_failed = False


@dataclass
class GpuSample:
    index: int
    name: str
    util: float | None          # percent
    mem_used: int | None        # bytes
    mem_total: int | None       # bytes
    temp: float | None          # degrees C
    power: float | None         # watts


def _get_nvml():
    global _nvml, _nvml_failed
    if _nvml is None and not _nvml_failed:
        try:
            import pynvml

            pynvml.nvmlInit()
            _nvml = pynvml
        except Exception:  # no library, no driver, no GPU: all mean "no NVIDIA GPUs here"
            _nvml_failed = True
    return _nvml


def _try(fn, *args):
    try:
        return fn(*args)
    except Exception:
        return None


def sample_gpus() -> list[GpuSample]:
    """One sample per GPU (NVML index = PCI bus order); [] without NVIDIA GPUs."""
    nv = _get_nvml()
    if nv is None:
        return []
    out = []
    for i in range(_try(nv.nvmlDeviceGetCount) or 0):
        h = _try(nv.nvmlDeviceGetHandleByIndex, i)
        if h is None:
            continue
        name = _try(nv.nvmlDeviceGetName, h)
        util = _try(nv.nvmlDeviceGetUtilizationRates, h)
        mem = _try(nv.nvmlDeviceGetMemoryInfo, h)
        temp = _try(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
        power = _try(nv.nvmlDeviceGetPowerUsage, h)
        out.append(GpuSample(
            index=i,
            name=name.decode() if isinstance(name, bytes) else str(name or f"GPU {i}"),
            util=float(util.gpu) if util is not None else None,
            mem_used=int(mem.used) if mem is not None else None,
            mem_total=int(mem.total) if mem is not None else None,
            temp=float(temp) if temp is not None else None,
            power=power / 1000.0 if power is not None else None,
        ))
    return out


def gpu_processes() -> dict[int, dict[int, int]]:
    """pid -> {GPU index: bytes used} for every compute process NVML reports."""
    nv = _get_nvml()
    if nv is None:
        return {}
    out: dict[int, dict[int, int]] = {}
    for i in range(_try(nv.nvmlDeviceGetCount) or 0):
        h = _try(nv.nvmlDeviceGetHandleByIndex, i)
        for p in (_try(nv.nvmlDeviceGetComputeRunningProcesses, h) or []) if h is not None else []:
            used = p.usedGpuMemory if isinstance(p.usedGpuMemory, int) else 0
            out.setdefault(p.pid, {})[i] = out.get(p.pid, {}).get(i, 0) + used
    return out


class ProcessTable:
    """The process table as one sampling round sees it, read only as far as asked: a run's descendants from
    ``/proc/PID/task/TID/children`` (its own tree, not the whole table, which ``Process.children`` walks for
    each call), the members of each session in one cheap pass (``getsid`` over the pids) shared by all runs."""

    def __init__(self):
        self._sessions: dict[int, list[int]] | None = None

    def descendants(self, pid: int) -> set[int]:
        out, todo = set(), [pid]
        while todo:
            for child in _children(todo.pop()):
                if child not in out:
                    out.add(child)
                    todo.append(child)
        return out

    def session(self, sid: int) -> list[int]:
        if self._sessions is None:
            self._sessions = {}
            for pid in psutil.pids():
                try:
                    self._sessions.setdefault(os.getsid(pid), []).append(pid)
                except OSError:
                    continue
        return self._sessions.get(sid, [])


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``: the kernel's per-thread lists where it has them, else psutil."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tids = None
    if tids:
        out: list[int] = []
        try:
            for tid in tids:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                    out += [int(c) for c in fh.read().split()]
            return out
        except FileNotFoundError:
            pass  # a kernel without CONFIG_PROC_CHILDREN (or the thread just ended): ask psutil
        except OSError:
            return out
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def process_table() -> ProcessTable:
    return ProcessTable()


def run_pids(pid: int, sid: int | None = None, table: ProcessTable | None = None) -> set[int]:
    """The process tree of ``pid``, plus the members of session ``sid`` (processes that left the tree);
    read from ``table`` when given (one sampling round), else from the live process table."""
    pids: set[int] = set()
    if table is not None:
        if psutil.pid_exists(pid):
            pids.add(pid)
            pids.update(table.descendants(pid))
        if sid:
            pids.update(table.session(sid))
        return pids
    try:
        root = psutil.Process(pid)
        pids.add(pid)
        pids.update(c.pid for c in root.children(recursive=True))
    except psutil.Error:
        pass
    if sid:
        pids.update(session_members(sid))
    return pids


def session_members(sid: int) -> list[int]:
    """Live pids whose session id is ``sid``."""
    out = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid:
                out.append(pid)
        except OSError:
            continue
    return out


def run_gpu_memory(pid: int, sid: int | None = None, table: ProcessTable | None = None) -> dict[int, int]:
    """GPU index -> bytes used by the run's processes; {} without NVIDIA GPUs."""
    procs = gpu_processes()
    if not procs:
        return {}
    out: dict[int, int] = {}
    for p in run_pids(pid, sid, table):
        for gpu, used in procs.get(p, {}).items():
            out[gpu] = out.get(gpu, 0) + used
    return out


_proc_cache: dict[int, psutil.Process] = {}  # cpu_percent measures since the previous call on the same object


def run_process_usage(pid: int, sid: int | None = None, table: ProcessTable | None = None) -> tuple[float, int]:
    """(CPU percent summed over the run's processes since the last call, resident bytes); (0, 0) when gone."""
    cpu, rss = 0.0, 0
    for p in run_pids(pid, sid, table):
        proc = _proc_cache.get(p)
        try:
            if proc is None:
                proc = _proc_cache[p] = psutil.Process(p)
            with proc.oneshot():
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
        except psutil.Error:
            _proc_cache.pop(p, None)
    return cpu, rss


def free_gpus(max_mem_share: float = 0.05) -> list[int]:
    """GPUs with no compute process and almost no memory in use (for the launch form)."""
    busy = {gpu for per in gpu_processes().values() for gpu in per}
    return [g.index for g in sample_gpus()
            if g.index not in busy and (not g.mem_total or (g.mem_used or 0) / g.mem_total <= max_mem_share)]


def host_memory() -> tuple[int, int]:
    """(bytes in use, total bytes) of the host's memory; in use = total - available (caches do not count)."""
    vm = psutil.virtual_memory()
    return int(vm.total - vm.available), int(vm.total)


def disk_usage(path: str | os.PathLike) -> tuple[int, int] | None:
    """(free bytes, total bytes) of the filesystem holding ``path``; None when it cannot be read."""
    try:
        u = psutil.disk_usage(os.fspath(path))
    except OSError:
        return None
    return int(u.free), int(u.total)


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of the files under ``path`` (a checkpoint folder); files that vanish meanwhile count 0."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f), follow_symlinks=False).st_size
            except OSError:
                continue
    return total
