"""Runs as Slurm jobs: RUN_DIR/job.sbatch, its submission, the job's state merged with the run's own.

The batch script starts one machine of the run per node (``srun``, one task a node): the supervisor and
``accelerate launch`` with the node's rank, the rendezvous on the job's first node. Everything per node is
expanded by that node's shell (single quotes in the script): ``$SLURM_NODEID`` expanded once by the batch
shell would give every node rank 0. ``--signal=TERM@grace`` asks the trainer to checkpoint before the
time limit; ``--requeue`` lets Slurm restart a preempted job, and the script requeues a job that Slurm's
signal stopped; either way the trainer continues from the newest checkpoint (it does when one exists).

Client commands (sbatch, squeue, scontrol, scancel) find the cluster as they always do (``SLURM_CONF`` or
the configured controller). Job states are sampled with ``squeue`` (``scontrol show job`` for a job that left
the queue), one query for every job of a round, on the schedule of whoever watches the runs (the console's
watcher every ``POLL_SECONDS``, ``run ls`` once); asking a run its state reads the sample (``sampled``) and
never starts a command. The Slurm kind of run (kinds/slurm.py) is built on these.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from kidconsole import __version__, rundir
from kidconsole.errors import KidconsoleError
from kidconsole.runs.state import Scheduler, with_scheduler

# Slurm's job states, as squeue and scontrol print them
WAITING = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT")
ACTIVE = ("RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED")
POLL_SECONDS = 5.0  # how long a queried job state is reused
RESUME_ENV = "KIDCONSOLE_RESUME"  # set by `run resume` on the resubmission: the trainer requires a checkpoint
# the per-node values, expanded by each node's shell
NODE_RANK, MAIN_ADDR, MAIN_PORT = "$SLURM_NODEID", "$KIDCONSOLE_MAIN_ADDR", "$KIDCONSOLE_MAIN_PORT"


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    time: str | None = None
    account: str | None = None
    grace: int = 120  # seconds before the time limit at which the trainer is asked to checkpoint
    extra: tuple[str, ...] = field(default_factory=tuple)  # more sbatch options, as given


@dataclass(frozen=True)
class Job:
    id: str
    state: str          # PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, PREEMPTED, CANCELLED, NODE_FAIL ...
    reason: str = ""    # why it waits (Priority, Resources, BeginTime ...), "None" while it runs
    nodes: str = ""     # its node list, as Slurm writes it

    @property
    def waiting(self) -> bool:
        return self.state in WAITING

    @property
    def active(self) -> bool:
        return self.state in WAITING or self.state in ACTIVE


def _slurm(args: list[str], what: str, timeout: float = 30) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise KidconsoleError(f"{what}: `{args[0]}` not found: Slurm's client commands are not installed here")
    except subprocess.TimeoutExpired:
        raise KidconsoleError(f"{what}: `{' '.join(args)}` did not answer within {timeout:g} s")


# ---- the batch script ------------------------------------------------------------------------------

def _shell_word(arg: str) -> str:
    # the per-node variables stay for the node's shell to expand; everything else is literal
    return f'"{arg}"' if arg in (NODE_RANK, MAIN_ADDR, MAIN_PORT) else shlex.quote(arg)


def node_command(run_dir: Path, opts: SlurmOptions, trainer_module: str, mixed_precision: str,
                 python: str = sys.executable) -> list[str]:
    """What each node runs: the supervisor (this node's rank) around this node's ``accelerate launch``."""
    from kidconsole.runs.launch import Machines, build_command

    gpus = list(range(opts.gpus_per_node))  # the node's own GPUs, as Slurm numbers them for the job
    machines = Machines(opts.nodes, NODE_RANK, MAIN_ADDR, MAIN_PORT, max(1, len(gpus))) if opts.nodes > 1 else None
    launch = build_command(run_dir, gpus=gpus, trainer_module=trainer_module, mixed_precision=mixed_precision,
                           python=python, machines=machines)
    return [python, "-m", rundir.SUPERVISOR_MODULE, str(run_dir), "--machine-rank", NODE_RANK, "--", *launch]


def job_script(run_dir: Path, name: str, opts: SlurmOptions, trainer_module: str = rundir.TRAINER,
               mixed_precision: str = "no", python: str = sys.executable, workdir: str | None = None) -> str:
    run_dir = Path(run_dir)
    sb = [f"--job-name={name}", f"--nodes={opts.nodes}", "--ntasks-per-node=1",
          f"--output={run_dir / rundir.STDOUT}", "--open-mode=append", f"--signal=TERM@{opts.grace}", "--requeue"]
    if opts.gpus_per_node:
        sb.append(f"--gpus-per-node={opts.gpus_per_node}")
    for flag, value in (("partition", opts.partition), ("time", opts.time), ("account", opts.account)):
        if value:
            sb.append(f"--{flag}={value}")
    sb += list(opts.extra)
    inner = " ".join(_shell_word(a) for a in node_command(run_dir, opts, trainer_module, mixed_precision, python))
    inner += f" ${{{RESUME_ENV}:+--resume}}"
    me = [shlex.quote(python), "-m", "kidconsole.runs.slurm"]
    lines = ["#!/bin/bash", *(f"#SBATCH {a}" for a in sb),
             f"# kidconsole {__version__}: run {name}, one machine of the run per node (kidconsole run launch --slurm)",
             "set -u",
             f"cd {shlex.quote(workdir or os.getcwd())}",
             "export PYTHONUNBUFFERED=1 CUDA_DEVICE_ORDER=PCI_BUS_ID",
             '# the rendezvous: the job\'s first node (this one), a port of its own per job',
             'export KIDCONSOLE_MAIN_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
             "export KIDCONSOLE_MAIN_PORT=$((20000 + SLURM_JOB_ID % 20000))",
             f"{' '.join(me)} job-start {shlex.quote(str(run_dir))}",
             "# single quotes: each node's shell expands its own $SLURM_NODEID",
             f"srun --nodes={opts.nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 "
             f"bash -c {shlex.quote('exec ' + inner)}",
             "rc=$?",
             "# stopped by Slurm's signal (time limit) and not by `kidconsole run stop`: back in the queue",
             f"{' '.join(me)} job-end {shlex.quote(str(run_dir))} || true",
             "exit $rc", ""]
    return "\n".join(lines)


def submit(run_dir: Path, *, resume: bool = False) -> str:
    """``sbatch --parsable RUN_DIR/job.sbatch``; returns the job id."""
    args = ["sbatch", "--parsable"]
    if resume:
        args.append(f"--export=ALL,{RESUME_ENV}=1")
    out = _slurm(args + [str(run_dir / rundir.JOB_SCRIPT)], f"{run_dir / rundir.JOB_SCRIPT}")
    job = out.stdout.strip().split(";")[0]
    if out.returncode != 0 or not job:
        raise KidconsoleError(f"{run_dir / rundir.JOB_SCRIPT}: sbatch failed: {(out.stderr or out.stdout).strip()}")
    return job


def start_job(run_dir: Path, opts: SlurmOptions) -> str:
    """Write a created run's job.sbatch and submit it; returns the job id (also in status.json)."""
    status = rundir.read_status_record(run_dir)
    script = job_script(run_dir, run_dir.name, opts, status.trainer_module or rundir.TRAINER,
                        status.mixed_precision or "no")
    rundir.atomic_write_text(run_dir / rundir.JOB_SCRIPT, script)
    job = submit(run_dir)
    rundir.update_status(run_dir, slurm_job_id=job)
    return job


def launch_slurm(config: str | Path, opts: SlurmOptions, *, name: str | None = None, overrides: Sequence[str] = (),
                 runs_root: str | Path = "runs", trainer_module: str = rundir.TRAINER) -> Path:
    """Validate the config, create the run directory with config.yaml and job.sbatch, submit the job
    (a submission that fails leaves no run directory behind)."""
    from kidconsole.runs.life import launch

    if opts.nodes < 1 or opts.gpus_per_node < 0 or opts.grace < 0:
        raise KidconsoleError("--nodes must be >= 1, --gpus-per-node and --grace >= 0")
    return launch(config, rundir.SLURM, dict(opts=opts), name=name, overrides=overrides, runs_root=runs_root,
                  trainer_module=trainer_module, state=rundir.STARTING, gpus=list(range(opts.gpus_per_node)),
                  started_at=round(time.time(), 3), machines=opts.nodes)


# ---- inside the job ----------------------------------------------------------------------------------

def job_start(run_dir: Path) -> None:
    """On the job's first node, before the ranks start (again after a requeue): where the run now runs."""
    hosts = _slurm(["scontrol", "show", "hostnames", os.environ.get("SLURM_JOB_NODELIST", "")], "job start")
    rundir.update_status(
        run_dir, host=socket.gethostname(), slurm_job_id=os.environ.get("SLURM_JOB_ID"),
        slurm_hosts=hosts.stdout.split() or [socket.gethostname()],
        slurm_restarts=int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
        main_addr=os.environ.get("KIDCONSOLE_MAIN_ADDR"), main_port=int(os.environ.get("KIDCONSOLE_MAIN_PORT", "0")),
        state=rundir.STARTING, exit_code=None, error=None, ended_at=None)


def job_end(run_dir: Path) -> bool:
    """After the ranks ended: requeue the job when the run stopped on Slurm's signal (a time limit)
    rather than on `run stop`; returns whether it did."""
    status = rundir.read_status_record(run_dir)
    if status.state != rundir.STOPPED or status.stop_requested_at is not None:
        return False
    job = os.environ.get("SLURM_JOB_ID") or status.slurm_job_id
    return _slurm(["scontrol", "requeue", str(job)], "job end").returncode == 0


# ---- job states: sampled on the watcher's schedule, read from the sample ---------------------------

_samples: dict[str, tuple[float, Job | None]] = {}  # job id -> (when sampled, monotonic; the job or None: forgotten)


def _parse_scontrol(text: str) -> dict[str, str]:
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", text))


def query(ids: Sequence[str]) -> dict[str, Job]:
    """The jobs Slurm still knows, by id: one ``squeue`` for all, ``scontrol show job`` for the others."""
    ids = [str(i) for i in ids if i]
    out: dict[str, Job] = {}
    if not ids:
        return out
    try:
        q = _slurm(["squeue", "-h", "--states=all", "-j", ",".join(ids), "-o", "%i|%T|%r|%N"], "squeue", timeout=15)
    except KidconsoleError:
        return out
    for line in q.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0] in ids:
            out[parts[0]] = Job(parts[0], parts[1], parts[2], parts[3])
    for i in ids:
        if i not in out:
            s = _slurm(["scontrol", "-o", "show", "job", i], "scontrol", timeout=15)
            f = _parse_scontrol(s.stdout) if s.returncode == 0 else {}
            if f.get("JobState"):
                out[i] = Job(i, f["JobState"], f.get("Reason", ""), f.get("NodeList", ""))
    return out


def sample(ids: Sequence[str], max_age: float = 0.0) -> None:
    """Query the jobs whose sample is older than ``max_age`` seconds (all: 0) and keep what Slurm says.
    The watcher calls this on its schedule, ``run ls`` once; nothing else runs ``squeue`` to read a state."""
    now = time.monotonic()
    stale = sorted({str(j) for j in ids if j and (str(j) not in _samples or now - _samples[str(j)][0] >= max_age)})
    if not stale:
        return
    found = query(stale)
    for j in stale:
        _samples[j] = (now, found.get(j))


def sampled(job_id: str | None) -> tuple[bool, Job | None]:
    """(whether the job was sampled, its last sample: None when Slurm had forgotten it). No command runs."""
    hit = _samples.get(str(job_id)) if job_id else None
    return (False, None) if hit is None else (True, hit[1])


def forget(job_id: str) -> None:
    """Drop a job's sample (it was just signalled or resubmitted: the next read waits for a new one)."""
    _samples.pop(str(job_id), None)


def scheduler_of(job: Job | None) -> Scheduler | None:
    """The job as the state rule takes it: waiting in the queue, active, or ended (None: Slurm forgot it)."""
    if job is None:
        return None
    return "waiting" if job.waiting else "active" if job.active else "ended"


def merge_state(state: str, job: Job | None) -> str:
    """The run's own state with its job's, by the one rule (``state.with_scheduler``): a job in the queue is
    ``pending`` whatever the last attempt wrote; a job that ended while the run had not is ``interrupted``."""
    return with_scheduler(state, scheduler_of(job))


# ---- stop and resume ---------------------------------------------------------------------------------

def stop_slurm(run_dir: Path, timeout: float = 120) -> None:
    """``scancel --signal=TERM`` (the trainer checkpoints), wait up to ``timeout`` s for the job to end,
    then ``scancel`` it; a job still in the queue is cancelled at once (the run ends ``stopped``)."""
    status = rundir.read_status_record(run_dir)
    jid = str(status.slurm_job_id)
    job = query([jid]).get(jid)
    forget(jid)
    if job is None or not job.active:
        return
    rundir.update_status(run_dir, stop_requested_at=round(time.time(), 3))
    if job.waiting:
        _slurm(["scancel", jid], "run stop")
        rundir.write_end(run_dir, rundir.STOPPED, f"job {jid} cancelled while it waited in Slurm's queue")
        return
    out = _slurm(["scancel", "--signal=TERM", jid], "run stop")
    if out.returncode != 0:
        raise KidconsoleError(f"{run_dir}: scancel --signal=TERM {jid}: {out.stderr.strip()}")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = query([jid]).get(jid)
        if job is None or not job.active:
            break
        time.sleep(1.0)
    else:
        _slurm(["scancel", jid], "run stop")
        if rundir.read_status_record(run_dir).state not in rundir.FINAL_STATES:
            why = f"job {jid} cancelled: still running {timeout:g} s after SIGTERM"
            rundir.write_end(run_dir, rundir.STOPPED, why, error=why)
    sample([jid])  # the job's end, as the state after the stop reads it


def resume_slurm(run_dir: Path) -> str:
    """Submit the run's job.sbatch again, the trainer requiring its newest checkpoint; returns the new job id."""
    status = rundir.read_status_record(run_dir)
    job = query([str(status.slurm_job_id)]).get(str(status.slurm_job_id))
    if job is not None and job.active:
        raise KidconsoleError(f"{run_dir}: job {job.id} is {job.state}: stop it first")
    if status.state == rundir.FINISHED:
        raise KidconsoleError(f"{run_dir}: finished: nothing to resume")
    ckpt = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
    if ckpt is None:
        raise KidconsoleError(f"{run_dir / rundir.CHECKPOINTS}: no complete checkpoint to resume from")
    jid = submit(run_dir, resume=True)
    rundir.update_status(run_dir, slurm_job_id=jid, state=rundir.STARTING, exit_code=None, error=None, ended_at=None,
                         stop_requested_at=None, resumed_from=ckpt.name, resumes=int(status.resumes or 0) + 1,
                         resumed_at=round(time.time(), 3))
    return jid


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("job-start", "job-end"):
        print("usage: python -m kidconsole.runs.slurm job-start|job-end RUN_DIR  (inside job.sbatch)", file=sys.stderr)
        return 2
    run_dir = Path(argv[1])
    if argv[0] == "job-start":
        job_start(run_dir)
    elif job_end(run_dir):
        print(f"kidconsole: job {os.environ.get('SLURM_JOB_ID')} stopped by Slurm's signal: requeued, it resumes "
              "from its newest checkpoint", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
