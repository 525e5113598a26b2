"""The run's supervisor: ``python -m kidconsole.runs.supervise RUN_DIR -- COMMAND...``.

It leads the run's session and process group, runs the launcher, and, as the
child subreaper, waits for every process of the run (ranks can outlive the
launcher after a SIGTERM: accelerate's launcher dies at once, its children
checkpoint first). Then it records the exit code, and the final state when the
trainer could not write one (a crash, a kill). A SIGTERM only marks that a stop
was asked for: the trainer's own handling decides when the run ends. Should the
launcher die unasked while the trainer runs, the supervisor stops the trainer the
way `run stop` does (SIGTERM: a checkpoint, then `stopped`).
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
from kidconsole.runs import liveness
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
            if time.monotonic() > deadline:
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


def _exit_text(rc: int) -> str:
    return f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"


def _stop_leftovers(run_dir: Path, rc: int) -> bool:
    """The launcher is gone but processes of the run remain (the trainer ranks, re-parented here):
    SIGTERM them, so the trainer checkpoints and ends the way `run stop` ends it, instead of
    training unwatched by its launcher and being SIGKILLed after the drain. True if there were any."""
    left = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    if not left:
        return False
    if rundir.read_status(run_dir).get("state") not in rundir.FINAL_STATES:
        print(f"supervisor: the launcher exited ({_exit_text(rc)}) while {len(left)} process(es) of the run "
              "still ran: SIGTERM to stop the trainer with a checkpoint", flush=True)
    for proc in left:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    return rundir.read_status(run_dir).get("state") not in rundir.FINAL_STATES


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
    os.umask(os.umask(0) | 0o022)  # nothing the run writes is writable by others (resume reads what it starts)
    rundir.update_status(run_dir, file=status_file, **liveness.pid_of_this_process())
    try:
        child = subprocess.Popen(command)
    except OSError as e:
        rundir.update_status(run_dir, file=status_file, state=rundir.FAILED, exit_code=127,
                             error=f"cannot start {command[0]}: {e}", ended_at=round(time.time(), 3))
        return 127
    rundir.update_status(run_dir, file=status_file, launcher_pid=child.pid)
    rc = child.wait()
    orphaned = None
    if not stop_requested and _stop_leftovers(run_dir, rc):
        orphaned = f"the launcher exited ({_exit_text(rc)}) while the trainer ran: stopped it with SIGTERM"
    _reap_all(time.monotonic() + DRAIN_SECONDS)  # a duration: the wall clock can step
    if machine_rank:
        rundir.update_status(run_dir, file=status_file, exit_code=rc, ended_at=round(time.time(), 3),
                             state=rundir.FINISHED if rc == 0 else rundir.STOPPED if stop_requested else rundir.FAILED)
        return 0

    status = rundir.read_status(run_dir)
    now = round(time.time(), 3)
    if status.get("state") in rundir.FINAL_STATES:  # the trainer wrote its own ending: complete it
        rundir.update_status(run_dir, ended_at=status.get("ended_at") or now,
                             exit_code=rc if status.get("exit_code") is None else status["exit_code"],
                             **({"error": f"{orphaned}; it checkpointed and stopped"}
                                if orphaned and status["state"] == rundir.STOPPED else {}))
        return 0
    if stop_requested:
        state, reason = rundir.STOPPED, "stopped" if rc == 0 else f"stopped; the launcher exited with {rc}"
    elif rc == 0:
        state, reason = rundir.FINISHED, "the launcher exited with 0"
    else:
        at = f"at step {status.get('step')}"
        what = f"{_exit_text(rc)} {at}" if rc < 0 else _exit_text(rc)
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
    run_dir = Path(argv[0])
    rc = supervise(run_dir, argv[2:], rank)
    if rank or rundir.read_status(run_dir).get("slurm_job_id"):
        return rc  # the queue is the submitting server's: a node of a job or machine > 0 starts nothing from it
    try:  # this run's slot is free now: start what waits for it (docs/runs.md, "Queue and sweeps")
        from kidconsole.runs.queue import pump

        pump(run_dir.resolve().parent)
    except Exception as e:  # the run's own ending is recorded already; a later pass starts the queue
        print(f"kidconsole: could not pass over the queue: {e}", flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
