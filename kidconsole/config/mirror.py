"""The config keys of mirroring a run where a team already looks: TensorBoard and MLflow (kidconsole/mirror.py
writes them, live from the trainer or afterwards with `kidconsole run mirror`)."""

from typing import Literal, Optional

from pydantic import Field

from kidconsole.config.kinds import Name, _kind
from kidconsole.config.section import Section
from kidconsole.rundir.names import MIRRORS

ReportTo = _kind(list[Literal[MIRRORS]], "a list of tensorboard, mlflow (or [])")
REPORT_TO_HELP = ("where the trainer also writes its events (train, eval, per-age PER, evaluation share, test): "
                  "`tensorboard` (event files in RUN/tensorboard), `mlflow` (see `mlflow.*`); a mirror that fails "
                  "is warned about and counted, never stops the run")


class MlflowSection(Section):
    tracking_uri: _kind(Optional[str], "a tracking URI or null") = Field(
        None, description="where MLflow runs go (`http://host:5000`, `sqlite:///path.db`, ...); null: the SQLite "
        "store `mlflow.db` in the runs root, artifacts in `mlartifacts/` beside it")
    experiment: Name = Field(None, description="the MLflow experiment (null: `kidconsole`)")
