"""Creating a run and starting it on this machine: the run directory made whole or not at all, the
``accelerate launch`` command, its environment, and the start under the run's supervisor
(``supervise.start_supervised``). Which kind starts a run, and how, is kinds/'s; ``life.launch`` ties them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kidconsole import __version__, rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.process import start_ticks

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
    """Start ``command`` (a launch of the trainer) under the run's supervisor with the GPUs' environment;
    returns the supervisor's pid. Machine ranks > 0 of a run over several record themselves in their own
    status file."""
    from kidconsole.runs.supervise import start_supervised

    return start_supervised(run_dir, command, env=launch_env(gpus), machine_rank=machine_rank)


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


NEW_PREFIX = ".new-"  # a run directory being made, hidden under the runs root until it is whole


def _making(root: Path, run_name: str) -> Path:
    """Where this process makes ``run_name`` before it takes its name: named for the process (pid and start),
    so a later launch can tell a leftover of one that was killed."""
    me = os.getpid()
    return root / f"{NEW_PREFIX}{run_name}.{me}.{start_ticks(me) or 0}"


def _remove_leftovers(root: Path) -> None:
    """Remove the half-made run directories of launches that died (their process is gone)."""
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(NEW_PREFIX) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for e in entries:
        m = re.fullmatch(r".*\.(\d+)\.(\d+)", e.name)
        if m is None:
            continue
        pid, ticks = int(m.group(1)), int(m.group(2))
        alive = start_ticks(pid) == ticks if ticks else os.path.exists(f"/proc/{pid}")
        if not alive:
            shutil.rmtree(e.path, ignore_errors=True)


_RENAME_NOREPLACE = 1


def _rename_noreplace(src: Path, dst: Path) -> bool:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError), in one step (renameat2); False where
    the system or filesystem cannot do that in one step."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise FileExistsError(err, os.strerror(err), str(dst))
    if err in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def _take_name(made: Path, run_dir: Path) -> None:
    """Give the whole directory ``made`` its name ``run_dir``; FileExistsError when another has it. Where the
    filesystem has no one-step rename that refuses to replace, the name is taken with mkdir and the files
    moved in, status.json last (a kill in between leaves a directory without status.json)."""
    if _rename_noreplace(made, run_dir):
        return
    run_dir.mkdir(mode=0o755)
    os.chmod(run_dir, 0o755)
    names = sorted(os.listdir(made), key=lambda n: n == rundir.STATUS)
    for name in names:
        os.rename(made / name, run_dir / name)
    made.rmdir()


def taken_message(run_dir: Path) -> str:
    """Why a launch cannot use the name of ``run_dir``, and what to do instead (a resume only where one can)."""
    status = rundir.read_status_record(run_dir)
    if not status:
        return (f"{run_dir} already exists and is not a run (no {rundir.STATUS}: a launch killed before it was "
                f"made, or another folder): choose another --name, or remove it")
    if status.state != rundir.FINISHED and rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS) is not None:
        return f"{run_dir} already exists: choose another --name, or `kidconsole run resume {run_dir}`"
    return f"{run_dir} already exists: choose another --name"


def create_run(config: str | Path, *, name: str | None = None, overrides: Sequence[str] = (),
               runs_root: str | Path = "runs", trainer_module: str = rundir.TRAINER, machine: int | None = None,
               **status) -> Path:
    """Validate the config and create the run directory (config.yaml, the launch facts in status.json,
    plus ``status``); no process yet. Returns the run directory. The directory is made under a hidden name
    and given its own only once whole: a launch killed meanwhile leaves no folder in the way of the name
    (its leftover is removed by the next launch), and two launches racing for a name cannot both have it.
    ``machine``: this machine's rank in a run over several, which share the directory (each writes its own
    status file; the configs must match)."""
    from kidconsole.config import config_hash, dump_config, load_config
    from kidconsole.hub import check_base

    config = Path(config)
    cfg = load_config(config, overrides)
    check_base(cfg.model.base)  # a hub id neither cached nor reachable fails here, in seconds
    run_name = _run_name(cfg, config, name)
    cfg.name = run_name
    text = dump_config(cfg)
    root = Path(runs_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    run_dir = root / run_name
    mine = status_file(machine or 0)
    facts = dict(name=run_name, host=socket.gethostname(), trainer_module=trainer_module,
                 mixed_precision=cfg.train.mixed_precision, config_hash=config_hash(cfg), version=__version__,
                 source_config=str(config.resolve()), **status)
    if machine is not None and run_dir.is_dir():  # another machine of the run made it
        if (run_dir / mine).exists():
            raise KidconsoleError(taken_message(run_dir))
        if (run_dir / rundir.CONFIG).exists():
            if (run_dir / rundir.CONFIG).read_text(encoding="utf-8") != text:  # every machine trains the same run
                raise KidconsoleError(f"{run_dir / rundir.CONFIG}: another machine launched this run with a "
                                      f"different config or --set")
        else:
            rundir.atomic_write_text(run_dir / rundir.CONFIG, text)
        rundir.update_status(run_dir, file=mine, **facts)
        return run_dir
    made = _making(root, run_name)
    shutil.rmtree(made, ignore_errors=True)
    made.mkdir(mode=0o755)
    os.chmod(made, 0o755)  # mkdir's mode is masked by the umask, never widened: make it exact
    try:
        rundir.atomic_write_text(made / rundir.CONFIG, text)
        rundir.update_status(made, file=mine, **facts)
        _take_name(made, run_dir)
    except FileExistsError:
        raise KidconsoleError(taken_message(run_dir)) from None
    finally:
        shutil.rmtree(made, ignore_errors=True)
    return run_dir


def start_run(run_dir: Path, gpus: Sequence[int], machines: Machines | None = None) -> int:
    """Start a created (or dequeued) run on ``gpus`` ([]: the CPU), with ``machines`` this machine's share of a
    run over several; returns the supervisor's pid. A run with a complete checkpoint continues from it (a
    resume that waited in the queue)."""
    rank = int(machines.rank) if machines is not None else 0
    status = rundir.read_status_record(run_dir, file=status_file(rank))
    resume = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS) is not None
    command = build_command(run_dir, gpus=gpus, trainer_module=status.trainer_module or rundir.TRAINER,
                            mixed_precision=status.mixed_precision or "no", machines=machines, resume=resume)
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
    from kidconsole.runs.life import launch

    gpus = check_gpus(gpus)
    if machines is None or machines.count <= 1:
        return launch(config, rundir.LOCAL, dict(gpus=gpus), name=name, overrides=overrides, runs_root=runs_root,
                      trainer_module=trainer_module, state=rundir.STARTING)
    rank = int(machines.rank)
    if not name:
        raise KidconsoleError("--machines: every machine of the run needs the same --name")
    if not 0 <= rank < machines.count:
        raise KidconsoleError(f"--machine-rank {rank}: expected 0 to {machines.count - 1}")
    machines = Machines(machines.count, rank, machines.addr, machines.port, max(1, len(gpus)))
    return launch(config, rundir.MACHINES, dict(gpus=gpus, machines=machines), name=name, overrides=overrides,
                  runs_root=runs_root, trainer_module=trainer_module, machine=rank, state=rundir.STARTING,
                  machines=machines.count, machine_rank=rank, main_addr=machines.addr, main_port=int(machines.port))
