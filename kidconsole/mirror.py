"""A run mirrored where a team already looks: its events as TensorBoard scalars and as an MLflow run.

One path for both uses: the trainer hands each event it writes to a ``Mirror`` (the config's ``report_to``),
and ``kidconsole run mirror RUN --to ...`` replays a run's events.jsonl through the same ``Mirror``
(``mirror_run``). A ``start`` event opens the mirror with the resolved config as hyperparameters; ``train``,
``eval`` and ``test`` events become metrics under the console's own series names (``train/loss``,
``eval/per``, ``eval/per_age/5-6``, ``test/per`` ...) at the event's step and time; the ``end`` event closes
it with the run's state, the config, the predictions and the exports as MLflow artifacts.

A mirror never stops a run: every call into TensorBoard or MLflow is guarded; a failure is warned about
(the first, then every ``WARN_EVERY``th) and counted in ``failures``.

TensorBoard files are written with tensorboardX (light: protobuf, no TensorFlow or torch). MLflow's default
store is SQLite in the runs root (MLflow 3 keeps its file store in maintenance mode), artifacts beside it.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.series_names import (
    BUCKET_FIELDS, EVAL_FIELDS, TEST_BUCKET_FIELDS, TEST_FIELDS, TRAIN_FIELDS, lr_group_metric,
)

WARN_EVERY = 100
RUN_TAG = "kidconsole.run_dir"    # the MLflow run of a run directory is found again by this tag (resume, replay)
DEFAULT_EXPERIMENT = "kidconsole"
MLFLOW_FLUSH_METRICS = 500          # metrics buffered before one batch write
MLFLOW_FLUSH_SECONDS = 5.0
MLFLOW_PARAM_CHARS = 6000           # MLflow's limit on a parameter's value
_STATUS = {rundir.FINISHED: "FINISHED", rundir.STOPPED: "KILLED", rundir.FAILED: "FAILED"}


def metrics(kind: str, ev: dict) -> list[tuple[str, float]]:
    """The chart values of one event, named as the console's series (``train/loss``, ``eval/per_age/5-6``)."""
    out: list[tuple[str, float]] = []

    def put(name: str, v: Any) -> None:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((name, float(v)))

    if kind == rundir.EV_TRAIN:
        for f in TRAIN_FIELDS:
            put(f"train/{f}", ev.get(f))
        for name, lr in zip(ev.get("lr_groups") or (), ev.get("group_lrs") or ()):
            put(lr_group_metric(name), lr)
    elif kind in (rundir.EV_EVAL, rundir.EV_TEST):
        prefix, fields, buckets = ("eval", EVAL_FIELDS, BUCKET_FIELDS) if kind == rundir.EV_EVAL else \
            ("test", TEST_FIELDS, TEST_BUCKET_FIELDS)
        for f in fields:
            put(f"{prefix}/{f}", ev.get(f))
        for f in buckets:
            for bucket, v in (ev.get(f) or {}).items():
                put(f"{prefix}/{f}/{bucket}", v)
    return out


def flat_params(config: Any, prefix: str = "") -> dict[str, str]:
    """The resolved config as hyperparameters: dotted keys to text (``phases.0.lr``: ``0.0005``)."""
    from kidconsole.config_files import flatten, show_value

    return {k: v if isinstance(v, str) else show_value(v) for k, v in flatten(config).items()}


def mirror_key(name: str) -> str:
    """A series name as TensorBoard and MLflow both take it (TensorFlow's rule for tags: letters, digits and
    ``_ - . /``): ``eval/per_age/<5`` is ``eval/per_age/_5``, ``per_snr/10-20 dB`` is ``per_snr/10-20_dB``."""
    return re.sub(r"[^\w\-./]", "_", name)


# ---------- the targets ----------

class TensorBoardTarget:
    name = "tensorboard"

    def __init__(self, run_dir: Path, mlflow_cfg: Any = None):
        self.folder = run_dir / rundir.TENSORBOARD
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:  # made on first use: opening a mirror writes nothing
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.folder), flush_secs=5)
        return self._writer

    def begin(self, name: str, params: dict[str, str]) -> None:
        from tensorboardX.summary import hparams

        for summary in hparams(params, {}):  # the HParams dashboard's experiment, session start and end
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in params.items()))

    def log(self, step: int, t: float, values: list[tuple[str, float]]) -> None:
        for key, v in values:
            self.writer.add_scalar(mirror_key(key), v, step, walltime=t)

    def end(self, state: str, run_dir: Path) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def existing(self) -> bool:
        return self.folder.is_dir() and any(self.folder.iterdir())

    def remove_existing(self) -> None:
        shutil.rmtree(self.folder)


class MlflowTarget:
    name = "mlflow"

    def __init__(self, run_dir: Path, mlflow_cfg: Any = None):
        from mlflow.tracking import MlflowClient

        root = run_dir.parent  # the runs root
        uri = getattr(mlflow_cfg, "tracking_uri", None)
        self.uri = uri or f"sqlite:///{root / rundir.MLFLOW_DB}"
        self.client = MlflowClient(tracking_uri=self.uri)
        name = getattr(mlflow_cfg, "experiment", None) or DEFAULT_EXPERIMENT
        exp = self.client.get_experiment_by_name(name)
        self.experiment = exp.experiment_id if exp is not None else self.client.create_experiment(
            name, artifact_location=None if uri else (root / rundir.MLFLOW_ARTIFACTS).as_uri())
        self.run_dir = run_dir
        self.run_id: str | None = None
        self._found = self._find()
        self._buffer: list = []
        self._flushed = time.monotonic()

    def _find(self):
        runs = self.client.search_runs([self.experiment], f"tags.`{RUN_TAG}` = '{self.run_dir}'", max_results=1)
        return runs[0] if runs else None

    def existing(self) -> bool:
        return self._found is not None

    def remove_existing(self) -> None:
        self.client.delete_run(self._found.info.run_id)
        self._found = None

    def begin(self, name: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        if self.run_id is None and self._found is not None:  # the same run directory resumed: the same run
            self.run_id = self._found.info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        if self.run_id is None:
            self.run_id = self.client.create_run(self.experiment, run_name=name,
                                                 tags={RUN_TAG: str(self.run_dir)}).info.run_id
        items = [Param(k[:250], v[:MLFLOW_PARAM_CHARS]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log(self, step: int, t: float, values: list[tuple[str, float]]) -> None:
        from mlflow.entities import Metric

        if self.run_id is None:
            return  # no start event yet (a replay of a run whose first lines are gone)
        self._buffer += [Metric(mirror_key(k), v, int(t * 1000), step) for k, v in values]
        if len(self._buffer) >= MLFLOW_FLUSH_METRICS or time.monotonic() - self._flushed > MLFLOW_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        buf, self._buffer = self._buffer, []
        self._flushed = time.monotonic()
        for i in range(0, len(buf), 1000):  # MLflow takes at most 1000 metrics a batch
            self.client.log_batch(self.run_id, metrics=buf[i:i + 1000])

    def end(self, state: str, run_dir: Path) -> None:
        if self.run_id is None:
            return
        self.flush()
        for name in (rundir.CONFIG, rundir.PREDICTIONS):
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        if (run_dir / rundir.EXPORTS).is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir / rundir.EXPORTS), rundir.EXPORTS)
        if state in _STATUS:  # a run replayed while it still runs stays running
            self.client.set_terminated(self.run_id, status=_STATUS[state])


_TARGETS = {"tensorboard": TensorBoardTarget, "mlflow": MlflowTarget}
_EXTRA = {"mlflow": "mirror"}  # tensorboardX is in the light install


# ---------- the mirror: every target, guarded ----------

@dataclass
class Mirror:
    """The targets of one run; every call guarded (a failure warned about and counted, never raised)."""
    run_dir: Path
    targets: list = field(default_factory=list)
    warn: Callable[[str], None] = print
    failures: dict[str, int] = field(default_factory=dict)
    first_error: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    name: str = ""

    @classmethod
    def open(cls, run_dir: str | Path, to: Iterable[str], config: Any, *, name: str | None = None,
             warn: Callable[[str], None] = print) -> "Mirror":
        """The mirror of ``run_dir`` into ``to`` (``report_to``) with ``config`` (a RunConfig or None); a target
        that cannot open (its extra missing, an unreachable tracking server) is warned about and counted."""
        from kidconsole.extras import need

        run_dir = Path(run_dir).resolve()
        dumped = config.model_dump() if hasattr(config, "model_dump") else (config or {})
        m = cls(run_dir, warn=warn, config=dumped, name=name or run_dir.name)
        for target in dict.fromkeys(to):
            try:
                if target in _EXTRA:
                    need(_EXTRA[target], f"mirroring to {target}")
                m.targets.append(_TARGETS[target](run_dir, getattr(config, "mlflow", None)))
            except Exception as e:  # noqa: BLE001 (a mirror never stops the run)
                m._failed(target, e)
        return m

    def _failed(self, target: str, e: BaseException) -> None:
        n = self.failures[target] = self.failures.get(target, 0) + 1
        self.first_error.setdefault(target, f"{type(e).__name__}: {e}")
        if n == 1 or n % WARN_EVERY == 0:
            self.warn(f"mirror to {target} failed ({n} time{'s' if n > 1 else ''} so far; the run goes on): "
                      f"{type(e).__name__}: {str(e)[:300]}")

    def _each(self, call: Callable[[Any], None]) -> None:
        for target in self.targets:
            try:
                call(target)
            except Exception as e:  # noqa: BLE001 (a mirror never stops the run)
                self._failed(target.name, e)

    def event(self, kind: str, t: float, ev: dict) -> None:
        """One event as written to events.jsonl (its kind, time and fields)."""
        if kind == rundir.EV_START:
            params = flat_params(self.config)
            self._each(lambda tg: tg.begin(self.name, params))
        elif kind == rundir.EV_END:
            self._each(lambda tg: tg.end(str(ev.get("state")), self.run_dir))
        else:
            values = metrics(kind, ev)
            step = ev.get("step")
            if values and isinstance(step, int):
                self._each(lambda tg: tg.log(step, t, values))


@dataclass(frozen=True)
class MirrorReport:
    events: int
    failures: dict[str, int]
    first_error: dict[str, str]
    where: dict[str, str]


def mirror_run(run_dir: str | Path, to: Iterable[str], *, replace: bool = False,
               warn: Callable[[str], None] = print, chunk_bytes: int = 8 << 20) -> MirrorReport:
    """Replay a run's events.jsonl into ``to``, as the trainer would have mirrored them live. A run already
    mirrored there is refused unless ``replace`` (its TensorBoard folder, its MLflow run, made again)."""
    from kidconsole.config import read_run_config
    from kidconsole.runs.tail import JsonlTail  # the command's side: a trainer never replays

    run_dir = Path(run_dir).resolve()
    events = run_dir / rundir.EVENTS
    if not events.is_file():
        raise KidconsoleError(f"{run_dir}: no {rundir.EVENTS}: not a run directory")
    to = list(dict.fromkeys(to))
    cfg = read_run_config(run_dir)
    m = Mirror.open(run_dir, to, cfg, name=rundir.read_status(run_dir).get("name"), warn=warn)
    if m.failures:
        raise KidconsoleError(f"cannot mirror {run_dir.name}: " + "; ".join(
            f"{t}: {m.first_error[t]}" for t in m.failures))
    for target in m.targets:
        if target.existing():
            if not replace:
                raise KidconsoleError(f"{run_dir.name} is already mirrored to {target.name} (--replace to make it "
                                      f"again)")
            target.remove_existing()
    tail = JsonlTail(events)
    n = 0
    ended = False
    while True:
        chunk = tail.read_new(chunk_bytes)
        if not chunk:
            break
        for ev in chunk:
            kind, t = ev.get("kind"), ev.get("t")
            if isinstance(kind, str) and isinstance(t, (int, float)):
                m.event(kind, float(t), ev)
                ended = ended or kind == rundir.EV_END
        n += len(chunk)
    if not ended:  # still running, or killed before its end event: close what was written
        m.event(rundir.EV_END, time.time(), {"state": rundir.read_status(run_dir).get("state")})
    where = {tg.name: str(tg.folder) if tg.name == "tensorboard" else f"{tg.uri} (run {tg.run_id})"
             for tg in m.targets}
    return MirrorReport(n, dict(m.failures), dict(m.first_error), where)
