"""The run's supervisor: ``python -m kidconsole.runs.supervise RUN_DIR -- COMMAND...``.

It leads the run's session and process group, runs the launcher, and, as the
child subreaper, waits for every process of the run (ranks can outlive the
launcher after a SIGTERM: accelerate's launcher dies at once, its children
checkpoint first). Then it records the exit code, and the final state when the
trainer could not write one (a crash, a kill). A SIGTERM only marks that a stop
was asked for: the trainer's own handling decides when the run ends.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from kidconsole import rundir
from kidconsole.runs.reader import log_tail

PR_SET_CHILD_SUBREAPER = 36
DRAIN_SECONDS = 300.0  # after the launcher exits, how long leftover processes may take before they are killed


def _become_subreaper() -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap_all(deadline: float) -> None:
    """Wait for every remaining descendant (orphans are re-parented here); kill them after the deadline."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.time() > deadline:
                for child in psutil.Process().children(recursive=True):
                    try:
                        child.kill()
                    except psutil.Error:
                        pass
                deadline = float("inf")
            time.sleep(0.1)


# how a launcher reports a rank that died of a signal: accelerate's simple launcher, torchrun
_KILLED = re.compile(r"died with <Signals\.(SIG\w+)|Signal \d+ \((SIG\w+)\) received by PID")


def _killed_by(run_dir: Path) -> str | None:
    """The signal that killed the trainer, when its launcher said so in the log."""
    for ln in reversed(log_tail(run_dir / rundir.STDOUT, 40)):
        if m := _KILLED.search(ln):
            return m.group(1) or m.group(2)
    return None


def _reason(run_dir: Path) -> str:
    lines = [ln.strip() for ln in log_tail(run_dir / rundir.STDOUT, 40) if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln or "Exception" in ln]
    return (errors or lines or [""])[-1][:300]


def supervise(run_dir: Path, command: list[str], machine_rank: int = 0) -> int:
    """Machine 0 (or a run on one machine) records the run in status.json; a machine > 0 of a run over several
    records only its own processes and exit, in its own file: the ranks of machine 0 write the run."""
    stop_requested = False
    status_file = rundir.node_status_name(machine_rank) if machine_rank else rundir.STATUS

    def on_term(signum, frame):
        nonlocal stop_requested
        stop_requested = True

    # a handler, not SIG_IGN: ignored signals would stay ignored in the launcher after exec
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    _become_subreaper()
    me = psutil.Process()
    rundir.update_status(run_dir, file=status_file, pid=me.pid, pgid=os.getpgid(0), sid=os.getsid(0),
                         create_time=me.create_time())
    try:
        child = subprocess.Popen(command)
    except OSError as e:
        rundir.update_status(run_dir, file=status_file, state=rundir.FAILED, exit_code=127,
                             error=f"cannot start {command[0]}: {e}", ended_at=round(time.time(), 3))
        return 127
    rundir.update_status(run_dir, file=status_file, launcher_pid=child.pid)
    rc = child.wait()
    _reap_all(time.time() + DRAIN_SECONDS)
    if machine_rank:
        rundir.update_status(run_dir, file=status_file, exit_code=rc, ended_at=round(time.time(), 3),
                             state=rundir.FINISHED if rc == 0 else rundir.STOPPED if stop_requested else rundir.FAILED)
        return 0

    status = rundir.read_status(run_dir)
    now = round(time.time(), 3)
    if status.get("state") in rundir.FINAL_STATES:  # the trainer wrote its own ending: complete it
        rundir.update_status(run_dir, ended_at=status.get("ended_at") or now,
                             exit_code=rc if status.get("exit_code") is None else status["exit_code"])
        return 0
    if stop_requested:
        state, reason = rundir.STOPPED, "stopped" if rc == 0 else f"stopped; the launcher exited with {rc}"
    elif rc == 0:
        state, reason = rundir.FINISHED, "the launcher exited with 0"
    else:
        at = f"at step {status.get('step')}"
        what = f"killed by {signal.Signals(-rc).name} {at}" if rc < 0 else f"exit code {rc}"
        last = _reason(run_dir)
        if rc > 0 and (sig := _killed_by(run_dir)):  # the launcher's own message is a traceback
            what, last = f"the trainer was killed by {sig} {at}", ""
        state, reason = rundir.FAILED, f"{what}: {last}" if last else what
    rundir.update_status(run_dir, state=state, exit_code=rc, error=reason if state == rundir.FAILED else None,
                         ended_at=now)
    writer = rundir.EventWriter(run_dir / rundir.EVENTS)
    try:
        writer.emit(rundir.EV_END, step=status.get("step"), state=state, exit_code=rc, reason=reason)
    finally:
        writer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rank = 0
    if len(argv) > 2 and argv[1] == "--machine-rank" and argv[2].isdigit():
        rank, argv = int(argv[2]), argv[:1] + argv[3:]
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m kidconsole.runs.supervise RUN_DIR [--machine-rank N] -- COMMAND...", file=sys.stderr)
        return 2
    return supervise(Path(argv[0]), argv[2:], rank)


if __name__ == "__main__":
    raise SystemExit(main())
