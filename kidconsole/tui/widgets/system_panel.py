"""The run detail's system tab: the run's processes, its GPUs, the host's memory and the run's disk."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from kidconsole import palette
from kidconsole.tui.watcher import RunView
from kidconsole.tui.widgets.run_card import fmt_bytes


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _share(used: float | None, total: float | None) -> str:
    if used is None or not total:
        return fmt_bytes(used)
    return f"{fmt_bytes(used)} / {fmt_bytes(total)} ({used / total:.0%})"


def system_panel(view: RunView) -> Group:
    sysv = view.system
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold")
    rows.add_column()
    if sysv is None:
        rows.add_row("machine", "not sampled yet")
        return Group(rows)
    if sysv.cpu is None:
        rows.add_row("processes", "none on this host (the run has ended, or runs elsewhere)")
    else:
        rows.add_row("processes", f"CPU {sysv.cpu:.0f}% of a core · resident {fmt_bytes(sysv.rss)}")
    if view.proc_gpu_mem is not None:
        rows.add_row("GPU memory", f"{fmt_bytes(view.proc_gpu_mem)} used by the run")
    rows.add_row("host memory", _share(sysv.host_mem_used, sysv.host_mem_total))
    free = "-" if sysv.disk_free is None else f"{fmt_bytes(sysv.disk_free)} free of {fmt_bytes(sysv.disk_total)}"
    rows.add_row("disk (run dir)", free)
    ckpt = "none yet" if not sysv.checkpoint_bytes else fmt_bytes(sysv.checkpoint_bytes)
    rows.add_row("last checkpoint", ckpt)
    parts: list = [rows]
    if sysv.disk_short:
        parts.append(Text(f"⚠ the next checkpoint will not fit: {fmt_bytes(sysv.disk_free)} free, the last one took "
                          f"{fmt_bytes(sysv.checkpoint_bytes)}. Free space or move the runs root.",
                          style=palette.WARNING))
    gpus = Table(title="GPUs of the run", title_justify="left", box=None, padding=(0, 1))
    for col in ("GPU", "util", "memory", "temp", "power"):
        gpus.add_column(col, justify="left" if col == "GPU" else "right")
    for g in view.gpus:
        gpus.add_row(str(g.index), _num(g.util, ".0f") + ("%" if g.util is not None else ""),
                     _share(g.mem_used, g.mem_total), _num(g.temp, ".0f") + ("°C" if g.temp is not None else ""),
                     _num(g.power, ".0f") + ("W" if g.power is not None else ""))
    parts.append(Text(""))
    parts.append(gpus if view.gpus else Text("no GPU assigned to this run", style="dim"))
    return Group(*parts)
