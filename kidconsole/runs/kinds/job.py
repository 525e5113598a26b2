"""A job: a run made without training (the average of a run's checkpoints, an ensemble of models) or a
run's export job (``RUN/exports``: its ONNX and INT8 kinds, each scored). Started detached under a
supervisor like any run (so it gets a final state and an ``end`` event even when killed), stopped the same
way; never resumed: it is made again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs.kinds.local import LocalKind


class JobKind(LocalKind):
    name = rundir.JOB

    def claims(self, run_dir: Path, status: Status) -> bool:
        return status.kind == self.name or (status.kind is None and status.derived is not None)

    def start(self, run_dir: Path, *, command: list[str] | None = None, env: dict[str, str] | None = None,
              log: str = rundir.STDOUT, **how: Any) -> int:
        """Start the job's ``command`` supervised, its output in ``run_dir/log``; returns the supervisor's pid."""
        from kidconsole.runs.supervise import start_supervised

        if not command:
            raise KidconsoleError(f"{run_dir}: a job needs its command")
        return start_supervised(run_dir, command, env=env, log=log)

    def resume(self, run_dir: Path, status: Status, *, machine_rank: int = 0,
               trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> str:
        what = {rundir.AVERAGE: "an average (`kidconsole run average`)",
                rundir.ENSEMBLE: "an ensemble (`kidconsole run ensemble`)"}.get(status.derived or "",
                                                                                  "an export (`kidconsole export`)")
        raise KidconsoleError(f"{run_dir}: {what} is a job, not a training run: it is not resumed; make it again")
