"""The run's supervisor: ``python -m kidconsole.runs.supervise RUN_DIR [--machine-rank N] [--log FILE] -- COMMAND...``
(or ``--after-end RUN_DIR``: its last duty, for a run whose supervisor is gone), and ``start_supervised``, the
one way a run's processes are started detached (a training or scoring run, a machine's share of a run over
several, a job: an average, an ensemble, an export).

The supervisor leads the run's session and process group, runs the command (the
launcher, or a job's own process), and, as the child subreaper, waits for every
process of the run (ranks can outlive the launcher after a SIGTERM: accelerate's
launcher dies at once, its children checkpoint first). Then it records the exit
code, and the run's end (``rundir.write_end``) when the command could not write
one (a crash, a kill). A SIGTERM only marks that a stop was asked for: the
trainer's own handling decides when the run ends. Should the launcher die unasked
while the trainer runs, the supervisor stops the trainer the way `run stop` does
(SIGTERM: a checkpoint, then `stopped`). Closing the console or losing SSH does not
reach it (its own session, no controlling terminal, no SIGHUP); see logind.py for
the one thing that still can.
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
from kidconsole.rundir.files import private_opener
from kidconsole.rundir.process import identity, this_process
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


def _killed_by(log: Path) -> str | None:
    """The signal that killed the trainer, when its launcher said so in the log."""
    for ln in reversed(log_tail(log, 40)):
        if m := _KILLED.search(ln):
            return m.group(1) or m.group(2)
    return None


def _reason(log: Path) -> str:
    lines = [ln.strip() for ln in log_tail(log, 40) if ln.strip()]
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
    if rundir.read_status_record(run_dir).state not in rundir.FINAL_STATES:
        print(f"supervisor: the launcher exited ({_exit_text(rc)}) while {len(left)} process(es) of the run "
              "still ran: SIGTERM to stop the trainer with a checkpoint", flush=True)
    for proc in left:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    return rundir.read_status_record(run_dir).state not in rundir.FINAL_STATES


def supervise(run_dir: Path, command: list[str], machine_rank: int = 0, log: str = rundir.STDOUT) -> int:
    """Machine 0 (or a run on one machine) records the run in status.json; a machine > 0 of a run over several
    records only its own processes and exit, in its own file: the ranks of machine 0 write the run.
    ``log``: the file under ``run_dir`` the command's output goes to (the reason of a failure is read there)."""
    stop_requested = False
    status_file = rundir.node_status_name(machine_rank) if machine_rank else rundir.STATUS
    log_path = run_dir / log

    def on_term(signum, frame):
        nonlocal stop_requested
        stop_requested = True

    # a handler, not SIG_IGN: ignored signals would stay ignored in the launcher after exec
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    _become_subreaper()
    os.umask(os.umask(0) | 0o022)  # nothing the run writes is writable by others (resume reads what it starts)
    rundir.update_status(run_dir, file=status_file, **this_process())
    try:
        child = subprocess.Popen(command)
    except OSError as e:
        rundir.write_end(run_dir, rundir.FAILED, f"cannot start {command[0]}: {e}", exit_code=127,
                         error=f"cannot start {command[0]}: {e}", file=status_file)
        return 127
    rundir.update_status(run_dir, file=status_file, launcher_pid=child.pid)
    rc = child.wait()
    orphaned = None
    if not stop_requested and _stop_leftovers(run_dir, rc):
        orphaned = f"the launcher exited ({_exit_text(rc)}) while the trainer ran: stopped it with SIGTERM"
    _reap_all(time.monotonic() + DRAIN_SECONDS)  # a duration: the wall clock can step
    if machine_rank:
        state = rundir.FINISHED if rc == 0 else rundir.STOPPED if stop_requested else rundir.FAILED
        rundir.write_end(run_dir, state, _exit_text(rc), exit_code=rc, file=status_file)
        return 0

    status = rundir.read_status_record(run_dir)
    if status.state in rundir.FINAL_STATES:  # the command wrote its own ending: complete it
        rundir.update_status(run_dir, ended_at=status.ended_at or round(time.time(), 3),
                             exit_code=rc if status.exit_code is None else status.exit_code,
                             **({"error": f"{orphaned}; it checkpointed and stopped"}
                                if orphaned and status.state == rundir.STOPPED else {}))
        return 0
    if stop_requested:
        state, reason = rundir.STOPPED, "stopped" if rc == 0 else f"stopped; the launcher exited with {rc}"
    elif rc == 0:
        state, reason = rundir.FINISHED, "the launcher exited with 0"
    else:
        at = f"at step {status.step}"
        what = f"{_exit_text(rc)} {at}" if rc < 0 else _exit_text(rc)
        last = _reason(log_path)
        if rc > 0 and (sig := _killed_by(log_path)):  # the launcher's own message is a traceback
            what, last = f"the trainer was killed by {sig} {at}", ""
        state, reason = rundir.FAILED, f"{what}: {last}" if last else what
    rundir.write_end(run_dir, state, reason, exit_code=rc, step=status.step,
                     error=reason if state == rundir.FAILED else None)
    return 0


def start_supervised(run_dir: Path, command: list[str], *, env: dict[str, str] | None = None, machine_rank: int = 0,
                     log: str = rundir.STDOUT) -> int:
    """Start ``command`` under a supervisor in a new session (no tty, output appended to ``run_dir/log``);
    returns the supervisor's pid. The one detached start of every kind of run. Machine ranks > 0 of a run
    over several machines record themselves in their own status file."""
    node = ["--machine-rank", str(machine_rank)] if machine_rank else []
    logged = ["--log", log] if log != rundir.STDOUT else []
    argv = [sys.executable, "-m", rundir.SUPERVISOR_MODULE, str(run_dir), *node, *logged, "--", *command]
    with open(run_dir / log, "ab", opener=private_opener) as out:
        proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, close_fds=True)
    # the supervisor records the same facts itself; writing them here too means they are
    # there when this call returns. The state is not touched: the run may already have ended.
    file = rundir.node_status_name(machine_rank) if machine_rank else rundir.STATUS
    rundir.update_status(run_dir, file=file, pid=proc.pid, pgid=proc.pid, sid=proc.pid, **identity(proc.pid))
    proc.returncode = 0  # not ours to reap: keep Popen's destructor from warning about a live child
    return proc.pid


USAGE = ("usage: python -m kidconsole.runs.supervise RUN_DIR [--machine-rank N] [--log FILE] -- COMMAND...\n"
         "       python -m kidconsole.runs.supervise --after-end RUN_DIR")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == rundir.AFTER_END:  # started by the run's own process as it ended
        from kidconsole.runs.life import after_own_end

        after_own_end(Path(argv[1]).resolve())
        return 0
    if "--" not in argv or argv.index("--") < 1:
        print(USAGE, file=sys.stderr)
        return 2
    split = argv.index("--")
    head, command = argv[:split], argv[split + 1:]
    run_dir, opts = Path(head[0]), head[1:]
    rank, log = 0, rundir.STDOUT
    while opts:
        if len(opts) < 2 or opts[0] not in ("--machine-rank", "--log") or \
                (opts[0] == "--machine-rank" and not opts[1].isdigit()):
            print(USAGE, file=sys.stderr)
            return 2
        if opts[0] == "--machine-rank":
            rank = int(opts[1])
        else:
            log = opts[1]
        opts = opts[2:]
    if not command:
        print(USAGE, file=sys.stderr)
        return 2
    rc = supervise(run_dir, command, rank, log)
    if rank:
        return rc  # the queue is machine 0's: a machine > 0 starts nothing from it
    from kidconsole.runs.life import after_end

    after_end(run_dir.resolve())
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
