"""Telling the user when a run ends: a toast, the terminal bell and a user command, as the user config says.

The user config is ``console.yaml`` in ``$XDG_CONFIG_HOME/kidconsole/`` (``~/.config/kidconsole/``)::

    notify:
      toast: true          # a toast in the console
      bell: true           # the terminal bell
      command: [notify-send, "kidconsole", "{run} {state} at step {step}"]   # argv, never a shell string
      states: [finished, failed, stalled, stopped, interrupted]

``{run}``, ``{state}``, ``{step}``, ``{path}`` in the command's arguments are replaced; the command also
gets them as ``KIDCONSOLE_RUN``, ``KIDCONSOLE_STATE``, ``KIDCONSOLE_STEP``, ``KIDCONSOLE_RUN_DIR``.

What the console last saw of each run is kept in ``$XDG_STATE_HOME/kidconsole/seen.json``
(``~/.local/state/kidconsole/``), so runs that ended while it was closed are told on the next start
("ended while you were away"); that is a toast only, the command is for ends seen live.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kidconsole import rundir
from kidconsole.bounded import read_capped
from kidconsole.errors import KidconsoleError

USER_CONFIG = "console.yaml"
SEEN_FILE = "seen.json"
COMMAND_TIMEOUT = 60.0  # seconds a notify command may take before it is killed
NotifyState = Literal["finished", "failed", "stalled", "stopped", "interrupted"]


def config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kidconsole"


def state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "kidconsole"


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    toast: bool = True
    bell: bool = True
    command: list[str] | None = None
    states: list[NotifyState] = [rundir.FINISHED, rundir.FAILED, rundir.STALLED, rundir.STOPPED,
                                 rundir.INTERRUPTED]


class ConsoleSettings(BaseModel):
    """The user config of the console (``console.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    notify: NotifySettings = NotifySettings()


def load_user_config(path: str | Path | None = None) -> ConsoleSettings:
    """The user's console settings; the defaults when the file does not exist. A bad file is an error that
    names it and the key."""
    from kidconsole.config import explain_validation_error, read_yaml

    path = Path(path) if path is not None else config_dir() / USER_CONFIG
    if not path.exists():
        return ConsoleSettings()
    raw = read_yaml(path) or {}
    command = (raw.get("notify") or {}).get("command") if isinstance(raw, dict) else None
    if isinstance(command, str):
        raise KidconsoleError(f"{path}: notify.command: a list of arguments (argv), never a shell string: "
                              f"write [{', '.join(json.dumps(w) for w in command.split())}]")
    if isinstance(command, list) and not command:
        raise KidconsoleError(f"{path}: notify.command: an empty list (leave the key out for no command)")
    try:
        return ConsoleSettings.model_validate(raw)
    except ValidationError as e:
        raise explain_validation_error(e, str(path)) from None


@dataclass
class Ended:
    """A run that reached a state worth telling."""

    key: str
    name: str
    state: str
    step: int | None
    path: Path

    def message(self) -> str:
        at = f" at step {self.step:,}" if self.step is not None else ""
        return f"{self.name} {self.state}{at}"


@dataclass
class Seen:
    """The state the console last saw of each run (run directory -> state), and when it was saved."""

    path: Path
    states: dict[str, str] = field(default_factory=dict)
    saved_at: float | None = None  # None: no file yet (the first start ever)
    _pending: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path) -> Seen:
        path = Path(path)
        try:
            data = json.loads(read_capped(path, 16 << 20))
            states = {str(k): str(v) for k, v in (data.get("runs") or {}).items()}
            return cls(path, states, float(data.get("saved_at") or 0.0))
        except (OSError, ValueError, AttributeError, TypeError):
            return cls(path)  # absent or unreadable: start afresh (nothing is lost but one "away" note)

    def queue(self) -> None:
        """Takes a copy of its states for the next ``flush`` (called where the states change)."""
        self._pending = dict(self.states)

    def flush(self) -> None:
        """Writes the newest queued copy, if any (safe from worker threads: saves that overlap are written
        one at a time, and one that comes late finds nothing older to write)."""
        with self._lock:
            states, self._pending = self._pending, None
            if states is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            rundir.atomic_write_text(self.path, json.dumps({"saved_at": round(time.time(), 3), "runs": states},
                                                           indent=1, sort_keys=True))


def _ended(view) -> Ended:
    return Ended(view.key, view.name, view.state, view.step, Path(view.path))


def away(seen: Seen, views: dict, states: list[str]) -> list[Ended]:
    """Runs that reached one of ``states`` while the console was closed: seen before in another state, or
    started after the console last saved and already there."""
    out = []
    for key, v in sorted(views.items(), key=lambda kv: (kv[1].name, kv[0])):
        before = seen.states.get(key)
        if v.state not in states or before == v.state:
            continue
        if before is not None or (seen.saved_at is not None and (v.started_at or 0) > seen.saved_at):
            out.append(_ended(v))
    return out


def transitions(before: dict[str, str], views: dict, states: list[str]) -> list[Ended]:
    """Runs whose state changed into one of ``states`` since ``before`` (runs new to ``before`` do not count:
    the console tells what it saw happen)."""
    return [_ended(v) for key, v in sorted(views.items(), key=lambda kv: (kv[1].name, kv[0]))
            if key in before and before[key] != v.state and v.state in states]


def command_argv(command: list[str], ended: Ended) -> list[str]:
    fields = {"run": ended.name, "state": ended.state, "step": "" if ended.step is None else str(ended.step),
              "path": str(ended.path)}
    out = []
    for arg in command:  # plain replacement: other braces (a JSON body) stay as written
        for name, value in fields.items():
            arg = arg.replace("{" + name + "}", value)
        out.append(arg)
    return out


def run_command(command: list[str], ended: Ended) -> str | None:
    """Runs the user's command for ``ended`` (no shell) and waits for it; the reason when it failed."""
    argv = command_argv(command, ended)
    env = {**os.environ, "KIDCONSOLE_RUN": ended.name, "KIDCONSOLE_STATE": ended.state,
           "KIDCONSOLE_STEP": "" if ended.step is None else str(ended.step), "KIDCONSOLE_RUN_DIR": str(ended.path)}
    try:
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return f"notify.command {argv[0]}: {e}"
    if proc.returncode:
        err = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        return f"notify.command {argv[0]} exited {proc.returncode}" + (f": {err[-1]}" if err else "")
    return None
