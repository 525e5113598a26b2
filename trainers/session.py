"""One run skeleton for every command that writes a run directory: train, score, export.

A session owns what each of them repeats: the failed status when the config
cannot be loaded, the stop request (SIGTERM / SIGINT, with its deadline), the
status of a run started by hand (its own ``config.yaml``, pid and name), the
``end`` event with the final status, and the one-line error of a failure (the
traceback goes to stdout.log). ``run(body)`` calls ``body`` and ends the run
with the state it returns, or as failed with the error it raised.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.process import identity
from trainers.checkpoint import DISK_FULL


def _now() -> float:
    return round(time.time(), 3)


class Session:
    def __init__(self, prog: str, run_dir: str | Path):
        self.prog = prog
        self.run_dir = Path(run_dir).resolve()
        self.rep = None
        self.stop = None
        self.print: Callable[..., None] = print

    # ---------- before the run starts ----------
    def fail_early(self, why: str, write: bool = True) -> int:
        """An error before the session opened (config, process group): the message and a failed status."""
        print(f"{self.prog}: error: {why}", file=sys.stderr)
        if write:
            rundir.write_end(self.run_dir, rundir.FAILED, why, exit_code=1, error=why)
        return 1

    def load(self, load_config: Callable[[], object]):
        """The config ``load_config`` returns, or None once a bad one has been reported as failed."""
        try:
            return load_config()
        except KidconsoleError as e:
            self.fail_early(str(e))
            return None

    def open(self, active: bool, stop_timeout: float, print_fn: Callable[..., None] = print) -> "Session":
        """The reporter (writing only when ``active``: rank 0) and the stop request with its deadline."""
        from trainers.report import Reporter
        from trainers.signals import StopRequest

        self.rep = Reporter(self.run_dir, active)
        self.print = print_fn
        self.stop = StopRequest(stop_timeout, on_timeout=self._timed_out).install()
        return self

    def _timed_out(self, why: str) -> None:
        if self.rep.active:
            rundir.write_end(self.run_dir, rundir.FAILED, why, exit_code=1, error=why, step=self.rep.step,
                             emit=self.rep.emit)

    def begin(self, config_text: str, name: str | None, state: str, **fields) -> None:
        """The live status; a run started by hand (not by the launcher) also describes itself:
        ``config.yaml`` when missing, and pid, process group, start time, command and name."""
        if not self.rep.active:
            return
        if not (self.run_dir / rundir.CONFIG).exists():
            rundir.atomic_write_text(self.run_dir / rundir.CONFIG, config_text)
        status = rundir.read_status(self.run_dir)
        new = {"state": state, "error": None, "exit_code": None, "ended_at": None, **fields}
        if "pid" not in status:  # no session id: a run started by hand shares its shell's
            new.update(pid=os.getpid(), pgid=os.getpgid(0), started_at=_now(), command=sys.argv,
                       name=name or self.run_dir.name, **identity(os.getpid()))
        self.rep.status(**new)

    @property
    def stopped(self) -> bool:
        return bool(self.stop and self.stop.requested)

    def stop_reason(self) -> str:
        return f"stopped by {self.stop.signal_name or 'request'}"

    # ---------- the end ----------
    def end(self, state: str, code: int, reason: str, error: str | None = None) -> int:
        self.rep.stop_heartbeat()  # a beat in flight could otherwise land after the final status, with an older step
        failed = []
        if self.rep.active:  # the event and the status each on its own (rundir.write_end): a full disk may take one
            failed = rundir.write_end(self.run_dir, state, reason, exit_code=code, step=self.rep.step, error=error,
                                      emit=self.rep.emit)
        try:
            self.rep.close()
        except OSError as e:
            failed.append(e)
        for e in failed:
            print(f"{self.prog}: cannot record the end ({state}: {reason}): {e}", file=sys.stderr)
        if self.rep.active and not failed:
            self._after_end()
        return code

    def _after_end(self) -> None:
        """The supervisor passes over its runs root's queue as it exits; a killed one never will, and the run
        that waits for this one's slot would wait for whoever next looks. So, where a queue exists, a detached
        process does that pass when the supervisor is gone (``rundir.AFTER_END``; nothing when it lives)."""
        if not (self.run_dir.parent / rundir.QUEUE).exists():
            return
        try:
            with open(self.run_dir / rundir.STDOUT, "ab") as log:
                subprocess.Popen([sys.executable, "-m", rundir.SUPERVISOR_MODULE, rundir.AFTER_END, str(self.run_dir)],
                                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, close_fds=True)
        except OSError as e:  # the end is recorded: the next `run ls` or `run queue` makes the pass
            print(f"{self.prog}: cannot pass over the queue: {e}", file=sys.stderr)

    def run(self, body: Callable[[], tuple[str, str]], errors: tuple[type[BaseException], ...] = ()) -> int:
        """``body()`` returns (final state, reason); ``KidconsoleError`` and ``errors`` end the run as failed
        with their message, any other exception with its first line (and the traceback in the log)."""
        try:
            state, reason = body()
            return self.end(state, 0, reason)
        except (KidconsoleError, *errors) as e:
            self.print(f"{self.prog}: error: {e}")
            return self.end(rundir.FAILED, 1, str(e), error=str(e))
        except Exception as e:  # the traceback goes to stdout.log, one line to status.json
            try:
                traceback.print_exc()
            except OSError:
                pass  # stdout.log on a full disk
            line = one_line(e)
            return self.end(rundir.FAILED, 1, line, error=line)
        finally:
            from trainers.data import end_workers

            rundir.remove_temp_files(self.run_dir)  # what an interrupted atomic write of this process left

            end_workers()  # after the final status: a failure's open loader must not keep the process alive
            self.stop.uninstall()
            _end_process_group()


def one_line(e: BaseException) -> str:
    """The status line of an unexpected error. A DataLoader worker's arrives as "Caught X in DataLoader
    worker process N." and the worker's traceback: its last line says what went wrong. A write that
    failed for want of space says where."""
    if isinstance(e, OSError) and e.errno in DISK_FULL:
        return f"disk full at {e.filename or '(unnamed file)'}: {e.strerror}"[:500]
    lines = [ln.strip() for ln in f"{type(e).__name__}: {e}".splitlines() if ln.strip()]
    if len(lines) > 1 and "Original Traceback" in lines[1]:
        return f"{lines[-1]} (in a DataLoader worker)"[:500]
    return lines[0][:500]


def _end_process_group() -> None:
    torch = sys.modules.get("torch")  # only a session that loaded torch can have joined a group
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
