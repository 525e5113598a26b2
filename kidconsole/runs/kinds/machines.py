"""One run over several machines: each machine runs its share under its own supervisor, the same run
directory on a filesystem they share; machine 0 writes the run's status, machine N > 0 its own
``status.node<N>.json``. Stopped on machine 0 (the stop flag rides the step's collective, so every machine
stops at the same step); resumed on each machine with its rank.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Sequence

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs.kinds.local import LocalKind, resume_checks, resumed_fields


class MachinesKind(LocalKind):
    name = rundir.MACHINES

    def claims(self, run_dir: Path, status: Status) -> bool:
        return status.kind == self.name or (status.kind is None and (status.machines or 1) > 1)

    def start(self, run_dir: Path, *, gpus: Sequence[int] = (), machines: Any = None, **how: Any) -> int:
        from kidconsole.runs.launch import start_run

        return start_run(run_dir, gpus, machines)

    def resume(self, run_dir: Path, status: Status, *, machine_rank: int = 0,
               trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> str:
        from kidconsole.runs.launch import Machines, build_command, start_detached, status_file

        count = status.machines or 1
        if machine_rank and not 0 < machine_rank < count:
            raise KidconsoleError(f"{run_dir}: --machine-rank {machine_rank}: the run has {count} machine(s)")
        mine = rundir.read_status_record(run_dir, file=status_file(machine_rank)) if machine_rank else status
        module, ckpt = resume_checks(run_dir, status, mine, machine_rank=machine_rank,
                                     trainer_modules=trainer_modules)
        gpus = [int(g) for g in mine.gpus or []]
        machines = Machines(count, machine_rank, status.main_addr or "127.0.0.1", status.main_port or 29500,
                            max(1, len(gpus)))
        command = build_command(run_dir, gpus=gpus, trainer_module=module,
                                mixed_precision=status.mixed_precision or "no", resume=True, machines=machines)
        if machine_rank:
            rundir.update_status(run_dir, file=status_file(machine_rank), state=rundir.STARTING, command=command,
                                 exit_code=None, ended_at=None, host=socket.gethostname())
        else:
            rundir.update_status(run_dir, state=rundir.STARTING, command=command, **resumed_fields(status, ckpt))
        start_detached(run_dir, command, gpus, machine_rank)
        return f"resumed machine {machine_rank} from {ckpt.name}"

    def after_end(self, run_dir: Path) -> None:
        """A run over several machines waits in no queue."""
