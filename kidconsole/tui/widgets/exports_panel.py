"""The run detail's exports tab: what ``RUN/exports/`` holds, each kind's state, the export table and the
tail of the background export's log. ``read_exports_state`` reads the disk (call it off the UI thread);
``exports_panel`` renders what it read."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from kidconsole import palette, rundir
from kidconsole.report.exports import exports_table, read_exports
from kidconsole.runs.life import read_state
from kidconsole.runs.reader import log_tail
from kidconsole.runs.system import folder_bytes
from kidconsole.shown import text
from kidconsole.tui.widgets.run_card import fmt_bytes

LOG_LINES = 6


def read_exports_state(run: str | Path) -> dict:
    """Each folder under RUN/exports (name, bytes, state when it is a scored kind), the export job's state
    (RUN/exports is its run directory: None before any), the export records and the last lines of
    exports/export.log. Every state is the one rule's (``life.read_state``)."""
    root = Path(run) / rundir.EXPORTS
    folders = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        state = read_state(sub) if (sub / rundir.STATUS).exists() else None
        folders.append({"name": sub.name, "bytes": folder_bytes(sub), "state": state})
    job = read_state(root) if (root / rundir.STATUS).exists() else None
    return {"folders": folders, "job": job, "records": read_exports(run),
            "log": log_tail(root / rundir.EXPORT_LOG, LOG_LINES)}


def export_running(data: dict) -> bool:
    return data.get("job") in rundir.STOPPABLE_STATES or any(f["state"] in rundir.STOPPABLE_STATES
                                                               for f in data["folders"])


def exports_panel(data: dict, name: str) -> Group:
    parts: list = []
    if not data["folders"]:
        parts.append(Text("No exports yet: a run writes exports/merged when it finishes; "
                          "o then makes the ONNX and INT8 exports.", style="dim"))
    else:
        what = Table(title="exports/", title_justify="left", box=None, padding=(0, 1))
        what.add_column("folder")
        what.add_column("size", justify="right")
        what.add_column("state")
        for f in data["folders"]:
            state = f["state"] or ""
            what.add_row(text(f["name"]), fmt_bytes(f["bytes"]), Text(state, style=palette.state_style(state)) if state else "")
        parts.append(what)
    job = data.get("job")
    if job:
        parts += [Text(""), Text.assemble("export job: ", (job, palette.state_style(job)))]
    if data["records"]:
        parts += [Text(""), exports_table(data["records"], name)]
    if data["log"]:
        parts += [Text(""), Text(f"{rundir.EXPORTS}/{rundir.EXPORT_LOG} (last lines)", style="bold"),
                  text("\n".join(data["log"]), "dim", lines=True)]
    return Group(*parts)
