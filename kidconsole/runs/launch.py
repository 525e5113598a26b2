"""Launch a run detached from the terminal: its own session, no tty, output to the run directory.

The started process is the supervisor (kidconsole.runs.supervise), which runs
``accelerate launch`` and records the final state when the trainer could not.
Closing the console or losing SSH does not reach it (no controlling terminal,
no SIGHUP); see logind.py for the one thing that still can.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kidconsole import __version__, rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.files import private_opener
from kidconsole.runs import liveness

if TYPE_CHECKING:
    from kidconsole.config import RunConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Machines:
    """One run over ``count`` machines, ``per_machine`` processes each (its GPUs, or 1 on the CPU): accelerate's
    rendezvous at ``addr:port`` (machine 0). ``rank`` and ``addr``/``port`` may be shell variables
    (``$SLURM_NODEID``) that each machine expands for itself."""
    count: int
    rank: int | str
    addr: str
    port: int | str
    per_machine: int = 1


def build_command(run_dir: str | Path, *, gpus: Sequence[int] = (), trainer_module: str = rundir.TRAINER,
                  mixed_precision: str = "no", resume: bool = False, python: str = sys.executable,
                  machines: Machines | None = None) -> list[str]:
    """The ``accelerate launch`` argv: one process per GPU (several GPUs = one distributed run), CPU without GPUs;
    with ``machines``, this machine's share of a run over several (gloo between CPU processes)."""
    run_dir = Path(run_dir)
    argv = [python, "-m", "accelerate.commands.launch", "--dynamo_backend", "no"]
    if machines is not None and machines.count > 1:
        argv += ["--num_machines", str(machines.count), "--machine_rank", str(machines.rank),
                 "--main_process_ip", str(machines.addr), "--main_process_port", str(machines.port),
                 "--multi_gpu", "--num_processes", str(machines.count * machines.per_machine),
                 "--mixed_precision", (mixed_precision or "no") if gpus else "no"]
    elif not gpus:
        argv += ["--num_machines", "1", "--cpu", "--num_processes", "1", "--mixed_precision", "no"]
    else:
        argv += ["--num_machines", "1", "--num_processes", str(len(gpus)), "--mixed_precision", mixed_precision or "no"]
        if len(gpus) > 1:
            argv += ["--multi_gpu", "--main_process_port", str(free_port())]
    argv += ["-m", trainer_module, "--config", str(run_dir / rundir.CONFIG), "--run-dir", str(run_dir)]
    if resume:
        argv.append("--resume")
    return argv


def launch_env(gpus: Sequence[int]) -> dict[str, str]:
    env = dict(os.environ)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # the same numbering as nvidia-smi and NVML
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)  # empty: no GPU, the run uses the CPU
    env["PYTHONUNBUFFERED"] = "1"  # stdout.log shows lines as they come
    return env



def start_detached(run_dir: Path, command: list[str], gpus: Sequence[int], machine_rank: int = 0) -> int:
    """Start the supervisor running ``command`` in a new session; returns its pid. Machine ranks > 0
    of a run over several machines record themselves in their own status file."""
    node = ["--machine-rank", str(machine_rank)] if machine_rank else []
    argv = [sys.executable, "-m", "kidconsole.runs.supervise", str(run_dir), *node, "--", *command]
    with open(run_dir / rundir.STDOUT, "ab", opener=private_opener) as log:
        proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=launch_env(gpus), close_fds=True)
    # the supervisor records the same facts itself; writing them here too means they are
    # there when this call returns. The state is not touched: the run may already have ended.
    rundir.update_status(run_dir, file=status_file(machine_rank), pid=proc.pid, pgid=proc.pid, sid=proc.pid,
                         **liveness.identity(proc.pid))
    proc.returncode = 0  # not ours to reap: keep Popen's destructor from warning about a live child
    return proc.pid


def status_file(machine_rank: int) -> str:
    """Where a machine of the run records its supervisor: status.json for machine 0 (the run's status)."""
    return rundir.node_status_name(machine_rank) if machine_rank else rundir.STATUS


MAX_NAME = 100  # characters: the run directory's name, with room for its files' names under NAME_MAX


def check_run_name(name: str) -> str:
    """``name`` if it can name a run directory under the runs root; a KidconsoleError saying why not."""
    shown = name if len(name) <= 40 else f"{name[:20]}...{name[-8:]}"
    if name in (".", ".."):
        raise KidconsoleError(f"run name {name!r}: cannot be '.' or '..' (the runs root or its parent)")
    if not re.fullmatch(r"[\w.+-]+", name):
        raise KidconsoleError(f"run name {shown!r}: use letters, digits, '.', '_', '+' or '-'")
    if not re.match(r"\w", name):
        raise KidconsoleError(f"run name {shown!r}: must start with a letter, a digit or '_' (a dot hides it)")
    if len(name) > MAX_NAME:
        raise KidconsoleError(f"run name {shown!r}: {len(name)} characters: at most {MAX_NAME}")
    return name


def _run_name(cfg: RunConfig, config: Path, name: str | None) -> str:
    if name:
        return check_run_name(name)
    base = re.sub(r"[^\w.+-]+", "-", str(cfg.name or config.stem)).strip("-.")[:MAX_NAME - 16] or "run"
    return check_run_name(f"{base}-{time.strftime('%Y%m%d-%H%M%S')}")


def create_run_dir(runs_root: str | Path, run_name: str, *, shared: bool = False) -> Path:
    """The new run directory, created in one step (two launches racing for a name: one wins, the
    other is told), writable by its owner only (0o755 whatever the umask: what a resume starts is
    read from it). ``shared``: one machine of a run over several, which may find it made by another."""
    root = Path(runs_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    run_dir = root / run_name
    try:
        run_dir.mkdir(mode=0o755)
    except FileExistsError:
        if not shared:
            raise KidconsoleError(f"{run_dir} already exists: choose another --name, "
                                  f"or `kidconsole run resume {run_dir}`") from None
    else:
        os.chmod(run_dir, 0o755)  # mkdir's mode is masked by the umask, never widened: make it exact
    return run_dir


def create_run(config: str | Path, *, name: str | None = None, overrides: Sequence[str] = (),
               runs_root: str | Path = "runs", trainer_module: str = rundir.TRAINER, machine: int | None = None,
               **status) -> Path:
    """Validate the config and create the run directory (config.yaml, the launch facts in status.json,
    plus ``status``); no process yet. Returns the run directory. ``machine``: this machine's rank in a
    run over several, which share the directory (each writes its own status file; the configs must match)."""
    from kidconsole.config import config_hash, dump_config, load_config
    from kidconsole.hub import check_base

    config = Path(config)
    cfg = load_config(config, overrides)
    check_base(cfg.model.base)  # a hub id neither cached nor reachable fails here, in seconds
    run_name = _run_name(cfg, config, name)
    run_dir = create_run_dir(runs_root, run_name, shared=machine is not None)
    mine = status_file(machine or 0)
    if machine is not None and (run_dir / mine).exists():
        raise KidconsoleError(f"{run_dir / mine} already exists: choose another --name, "
                              f"or `kidconsole run resume {run_dir}`")
    cfg.name = run_name
    text = dump_config(cfg)
    if machine is not None and (run_dir / rundir.CONFIG).exists():
        if (run_dir / rundir.CONFIG).read_text(encoding="utf-8") != text:  # every machine trains the same run
            raise KidconsoleError(f"{run_dir / rundir.CONFIG}: another machine launched this run with a different "
                                  f"config or --set")
    else:
        rundir.atomic_write_text(run_dir / rundir.CONFIG, text)
    rundir.update_status(
        run_dir, file=mine, name=run_name, host=socket.gethostname(), trainer_module=trainer_module,
        mixed_precision=cfg.train.mixed_precision, config_hash=config_hash(cfg), version=__version__,
        source_config=str(config.resolve()), **status,
    )
    return run_dir


def start_run(run_dir: Path, gpus: Sequence[int], machines: Machines | None = None) -> int:
    """Start a created (or queued) run on ``gpus`` ([]: the CPU), with ``machines`` this machine's share of a
    run over several; returns the supervisor's pid."""
    rank = int(machines.rank) if machines is not None else 0
    status = rundir.read_status(run_dir, file=status_file(rank))
    command = build_command(run_dir, gpus=gpus, trainer_module=status.get("trainer_module") or rundir.TRAINER,
                            mixed_precision=status.get("mixed_precision") or "no", machines=machines)
    rundir.update_status(run_dir, file=status_file(rank), state=rundir.STARTING, gpus=list(gpus), command=command,
                         started_at=round(time.time(), 3), queue_position=None, waiting_for=None)
    return start_detached(run_dir, command, gpus, rank)


def check_gpus(gpus: Sequence[int]) -> list[int]:
    gpus = [int(g) for g in gpus]
    if len(set(gpus)) != len(gpus) or any(g < 0 for g in gpus):
        raise KidconsoleError(f"--gpus {','.join(map(str, gpus))}: GPU indices must be distinct and >= 0")
    return gpus


def launch_run(config: str | Path, *, gpus: Sequence[int] = (), name: str | None = None, overrides: Sequence[str] = (),
               runs_root: str | Path = "runs", trainer_module: str = rundir.TRAINER,
               machines: Machines | None = None) -> Path:
    """Validate the config, create the run directory, start the run detached; returns the run directory.
    With ``machines`` (count > 1) this starts one machine's share: each machine runs the same launch with its
    own rank and the same ``name`` on a filesystem they share; machine 0 writes the run's status."""
    gpus = check_gpus(gpus)
    if machines is None or machines.count <= 1:
        run_dir = create_run(config, name=name, overrides=overrides, runs_root=runs_root,
                             trainer_module=trainer_module, state=rundir.STARTING)
        start_run(run_dir, gpus)
        return run_dir
    rank = int(machines.rank)
    if not name:
        raise KidconsoleError("--machines: every machine of the run needs the same --name")
    if not 0 <= rank < machines.count:
        raise KidconsoleError(f"--machine-rank {rank}: expected 0 to {machines.count - 1}")
    machines = Machines(machines.count, rank, machines.addr, machines.port, max(1, len(gpus)))
    run_dir = create_run(config, name=name, overrides=overrides, runs_root=runs_root, trainer_module=trainer_module,
                         machine=rank, state=rundir.STARTING, machines=machines.count, machine_rank=rank,
                         main_addr=machines.addr, main_port=int(machines.port))
    start_run(run_dir, gpus, machines)
    return run_dir
