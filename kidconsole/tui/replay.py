"""Replay a recorded run directory into another folder, event by event.

The console's tests, benchmarks and demos watch recorded runs "live" with this:
the static files are copied, then ``events.jsonl`` and ``decodes.jsonl`` grow
as ``advance`` appends the recorded lines, exactly as a trainer would write them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import psutil

from kidconsole.rundir import DECODES, EVENTS, STATUS, atomic_write_text

_GROWING = (EVENTS, DECODES, STATUS)


class Replay:
    """``src`` (a recorded run) replayed into ``dst``; ``start`` events are written at once.

    ``rebase`` moves every time stamp so the first event happens at that unix time
    (a live-looking replay); ``alive`` makes status.json name this process, so
    readers see a running process rather than an interrupted run.
    """

    def __init__(self, src: str | Path, dst: str | Path, *, start: int = 0, rebase: float | None = None,
                 alive: bool = True):
        self.src, self.dst = Path(src), Path(dst)
        self.events = (self.src / EVENTS).read_text(encoding="utf-8").splitlines()
        decodes_file = self.src / DECODES
        self.decodes = decodes_file.read_text(encoding="utf-8").splitlines() if decodes_file.exists() else []
        self.status = json.loads((self.src / STATUS).read_text(encoding="utf-8"))
        first_t = json.loads(self.events[0])["t"] if self.events else 0.0
        self.shift = 0.0 if rebase is None else rebase - first_t
        self.alive = alive
        self.done = 0
        self._decodes_done = 0
        self.dst.mkdir(parents=True, exist_ok=True)
        for item in self.src.iterdir():
            if item.name in _GROWING:
                continue
            if item.is_dir():
                shutil.copytree(item, self.dst / item.name, dirs_exist_ok=True)
            else:
                shutil.copy2(item, self.dst / item.name)
        for name in (EVENTS, DECODES):
            (self.dst / name).write_text("", encoding="utf-8")
        self.advance(start)

    @property
    def remaining(self) -> int:
        return len(self.events) - self.done

    def _shifted(self, line: str) -> tuple[str, float]:
        obj = json.loads(line)
        obj["t"] = round(obj["t"] + self.shift, 3)
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")), obj["t"]

    def advance(self, n: int = 1) -> int:
        """Append the next ``n`` recorded events (and the decodes written by then); returns how many."""
        lines = self.events[self.done:self.done + n]
        if not lines:
            return 0
        out, last_t, last = [], 0.0, {}
        for line in lines:
            text, last_t = self._shifted(line)
            out.append(text)
            last = json.loads(text)
        with (self.dst / EVENTS).open("a", encoding="utf-8") as fh:
            fh.write("\n".join(out) + "\n")
        self.done += len(lines)
        new_decodes = []
        while self._decodes_done < len(self.decodes):
            text, t = self._shifted(self.decodes[self._decodes_done])
            if t > last_t:
                break
            new_decodes.append(text)
            self._decodes_done += 1
        if new_decodes:
            with (self.dst / DECODES).open("a", encoding="utf-8") as fh:
                fh.write("\n".join(new_decodes) + "\n")
        self._write_status(last)
        return len(lines)

    def _write_status(self, last_event: dict) -> None:
        status = dict(self.status)
        for key in ("started_at", "create_time"):
            if key in status:
                status[key] = round(status[key] + self.shift, 3)
        status["updated_at"] = last_event.get("t", status.get("updated_at"))
        if "step" in last_event:
            status["step"] = last_event["step"]
        if self.alive:
            me = psutil.Process()
            status.update(pid=os.getpid(), pgid=os.getpgid(0), create_time=me.create_time(), host=socket.gethostname())
        atomic_write_text(self.dst / STATUS, json.dumps(status, indent=1))


def replay_all(recordings: str | Path, runs_root: str | Path, **kwargs) -> list[Replay]:
    """Every recorded run under ``recordings`` replayed into ``runs_root`` (same names)."""
    return [Replay(src, Path(runs_root) / src.name, **kwargs)
            for src in sorted(Path(recordings).iterdir()) if (src / EVENTS).exists()]


def replay_sweep(recordings: str | Path, runs_root: str | Path, n: int, groups: int = 3) -> list[Replay]:
    """``n`` runs made from the recorded ones in turn (``<recording>-<i>``, each with its own name and
    start time), as if launched from ``groups`` sweep configs (``source_config`` ``sweep-<i % groups>.yaml``):
    a dashboard of many runs for tests and benchmarks."""
    sources = [src for src in sorted(Path(recordings).iterdir()) if (src / EVENTS).exists()]
    out = []
    for i in range(n):
        src = sources[i % len(sources)]
        rp = Replay(src, Path(runs_root) / f"{src.name}-{i:02d}")
        rp.status.update(name=rp.dst.name, source_config=str(Path(runs_root) / f"sweep-{i % groups}.yaml"),
                         started_at=rp.status.get("started_at", 0.0) + 60.0 * i)
        rp.advance(rp.remaining)
        out.append(rp)
    return out
