"""Typed records of the run directory: status.json's keys, each event kind, decode, prediction and trace rows.

Each record is a dataclass; each field carries its JSON type (from its
annotation), who writes it and what it means, and docs/run-directory.md's
tables are generated from them (``python -m kidconsole.rundir --docs``).
Writers check a record as they write it (``to_dict``): an unknown key or a
value of the wrong type is an error in the writer, never a line that no reader
can use. Readers do not build a record per line (a history is a million
lines): they check the parsed values against the same types, column by column
(``event_columns``) or event by event (``event_problem``), and skip and count
what does not fit.
"""

import math
import typing
from dataclasses import Field, dataclass, field, fields
from typing import Any, Callable, ClassVar

from kidconsole.rundir.names import (
    DERIVED_KINDS, EV_CHECKPOINT, EV_END, EV_EVAL, EV_HEARTBEAT, EV_PHASE, EV_START, EV_TEST, EV_TRAIN, EV_WARNING,
    FINAL_STATES, RUN_KINDS, TRAINER_MODULES, WARNING_KINDS, WRITTEN_STATES,
)

# who writes a key (the docs' "written by" column)
TRAINER, LAUNCHER, SUPERVISOR, STOP, RESUME = "trainer", "launcher", "supervisor", "run stop", "run resume"
SLURM_JOB = "the Slurm job"
QUEUE, SWEEP = "the queue", "run sweep"
DERIVER = "run average, run ensemble"
NoneType = type(None)


# ---- JSON types -------------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    # the integers a JSON parser gives back exactly (orjson: 64 bits)
    return type(v) is int and -(1 << 63) <= v < (1 << 64)


def _is_number(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < (1 << 64)


@dataclass(frozen=True)
class JsonType:
    name: str                        # as the docs show it
    ok: Callable[[Any], bool]        # a value of this type (null is allowed apart, for every field)
    # the Python types a parsed value of this type has, for the readers' quick check of a whole column
    # (which trusts the parser for magnitudes: orjson yields no NaN, infinity or integer beyond 64 bits);
    # None: no quick check, every value is checked
    fast: frozenset | None = None


INT = JsonType("integer", _is_int, frozenset({int, NoneType}))
NUMBER = JsonType("number", _is_number, frozenset({int, float, NoneType}))
STR = JsonType("string", lambda v: isinstance(v, str), frozenset({str, NoneType}))
BOOL = JsonType("boolean", lambda v: isinstance(v, bool), frozenset({bool, NoneType}))
INTS = JsonType("list of integers", lambda v: isinstance(v, list) and all(_is_int(x) for x in v))
STRS = JsonType("list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
NUMBERS = JsonType("list of numbers", lambda v: isinstance(v, list) and all(_is_number(x) for x in v))
RANGE = JsonType("[lo, hi]", lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(map(_is_number, v)))
# a value per bucket label (PER by age group): null for a bucket that could not be scored
BY_BUCKET = JsonType("object of numbers", lambda v: isinstance(v, dict) and all(
    isinstance(k, str) and (x is None or _is_number(x)) for k, x in v.items()))
_BY_ANNOTATION = {int: INT, float: NUMBER, str: STR, bool: BOOL, list[int]: INTS, list[str]: STRS,
                  list[float]: NUMBERS, tuple[float, float]: RANGE, dict[str, float]: BY_BUCKET}


def _json_type(annotation: Any) -> JsonType:
    args = [a for a in typing.get_args(annotation) if a is not NoneType] or [annotation]
    if len(args) != 1 or args[0] not in _BY_ANNOTATION:
        raise TypeError(f"no JSON type for {annotation!r}")
    return _BY_ANNOTATION[args[0]]


def _clean(v: Any) -> Any:
    # JSON has no NaN/inf: they are written as null so every reader can parse the line
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


# ---- fields and records ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    name: str
    type: JsonType
    meaning: str
    by: str
    required: bool
    choices: tuple


def key(meaning: str, by: str = TRAINER, *, required: bool = False, choices: tuple = (), chart: bool = False):
    """A record field: its meaning, its writer; ``chart``: a series the console plots."""
    meta = {"meaning": meaning, "by": by, "choices": tuple(choices), "chart": chart, "required": required}
    return field(metadata=meta) if required else field(default=None, metadata=meta)


def record(cls):
    """Make ``cls`` a record: a slotted dataclass with ``SPEC`` (one Spec per field) and ``CHART``.
    Positional arguments follow the field order while the required fields come first, else keywords only."""
    required = [v.metadata["required"] for k, v in vars(cls).items() if isinstance(v, Field)]
    cls = dataclass(slots=True, kw_only=required != sorted(required, reverse=True))(cls)
    hints = typing.get_type_hints(cls)
    cls.SPEC = tuple(Spec(f.name, _json_type(hints[f.name]), f.metadata["meaning"], f.metadata["by"],
                          f.metadata["required"], f.metadata["choices"]) for f in fields(cls))
    cls.CHART = tuple(f.name for f in fields(cls) if f.metadata["chart"])
    cls.KEYS = frozenset(s.name for s in cls.SPEC)
    return cls


def _problem(spec: Spec, v: Any) -> str | None:
    if v is None:
        return f"lacks {spec.name}" if spec.required else None
    if not spec.type.ok(v):
        return f"{spec.name}: expected {spec.type.name}, got {type(v).__name__} {_short(v)}"
    return None


def _write_problem(spec: Spec, v: Any) -> str | None:
    why = _problem(spec, v)
    if why is None and v is not None and spec.choices and v not in spec.choices:
        why = f"{spec.name}: expected one of {', '.join(spec.choices)}, got {v!r}"
    return why


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class Record:
    SPEC: ClassVar[tuple[Spec, ...]] = ()
    CHART: ClassVar[tuple[str, ...]] = ()
    KEYS: ClassVar[frozenset] = frozenset()
    __slots__ = ()

    def to_dict(self) -> dict:
        """The JSON object to write, checked: TypeError names the field of the wrong type."""
        out = {}
        for s in self.SPEC:
            v = _clean(getattr(self, s.name))
            why = _write_problem(s, v)
            if why:
                raise TypeError(f"{type(self).__name__}: {why}")
            out[s.name] = v
        return out

    @classmethod
    def problem(cls, d: dict) -> str | None:
        """Why a parsed row cannot be used as this record (None: it can). Unknown keys are ignored."""
        for s in cls.SPEC:
            why = _problem(s, d.get(s.name))
            if why:
                return why
        return None


def usable_rows(cls: type[Record], rows: list) -> tuple[list[dict], int]:
    """The rows (parsed JSON objects) that fit ``cls``, and how many did not."""
    good = [r for r in rows if isinstance(r, dict) and cls.problem(r) is None]
    return good, len(rows) - len(good)


# ---- status.json -------------------------------------------------------------------------------------

@record
class Status(Record):
    """status.json: one JSON object, replaced atomically (temp file, fsync, rename, under `.status.lock`)
    by whoever updates it (`update_status`). Every key may be null or absent."""
    name: str | None = key("run name", LAUNCHER)
    kind: str | None = key("how the run is started, stopped and resumed: " + ", ".join(f"`{k}`" for k in RUN_KINDS)
                           + " (docs/runs.md, Kinds of run); absent: told from the other keys", f"{LAUNCHER}, {DERIVER}",
                           choices=RUN_KINDS)
    state: str | None = key("`queued`, `starting`, `running`, `evaluating`, `stopped`, `finished`, `failed`",
                            f"{LAUNCHER}, {QUEUE}, {TRAINER}, {SUPERVISOR}", choices=WRITTEN_STATES)
    pid: int | None = key("the supervisor: the run's session and group leader", f"{LAUNCHER}, {SUPERVISOR}")
    pgid: int | None = key("its process group", f"{LAUNCHER}, {SUPERVISOR}")
    sid: int | None = key("its session", f"{LAUNCHER}, {SUPERVISOR}")
    create_time: float | None = key("the supervisor's start time (psutil), so a reused pid is never the run",
                                    f"{LAUNCHER}, {SUPERVISOR}")
    start_ticks: int | None = key("the supervisor's start in clock ticks since boot (`/proc/PID/stat` field 22): "
                                  "its identity, unmoved by clock steps", f"{LAUNCHER}, {SUPERVISOR}")
    launcher_pid: int | None = key("the `accelerate launch` process the supervisor started", SUPERVISOR)
    host: str | None = key("host name (set by the first writer)", "all")
    gpus: list[int] | None = key("GPU indices (`[]` on the CPU)", LAUNCHER)
    command: list[str] | None = key("the argv the supervisor runs (rebuilt by a resume)", f"{LAUNCHER}, {RESUME}")
    trainer_module: str | None = key(f"the entry point run as `python -m` ({', '.join(TRAINER_MODULES)}); "
                                     "a resume starts it again", LAUNCHER)
    mixed_precision: str | None = key("accelerate's `--mixed_precision` (`train.mixed_precision`), reused by a resume",
                                      LAUNCHER)
    source_config: str | None = key("the config file launched (config.yaml is its resolved copy)", LAUNCHER)
    config_hash: str | None = key("sha256 of the resolved config", LAUNCHER)
    version: str | None = key("kidconsole version", LAUNCHER)
    started_at: float | None = key("unix seconds: the launch (a trainer started by hand: its start)",
                                   f"{LAUNCHER}, {TRAINER}")
    updated_at: float | None = key("unix seconds of the last update", "all")
    ended_at: float | None = key("unix seconds: the end", f"{TRAINER}, {SUPERVISOR}, {STOP}")
    phase: int | None = key("the current phase, 1-based")
    step: int | None = key("optimizer steps done")
    total_steps: int | None = key("optimizer steps if every phase runs all its epochs (early stopping ends a phase "
                                  "sooner)")
    exit_code: int | None = key("exit code once the process ended", f"{TRAINER}, {SUPERVISOR}")
    error: str | None = key("the reason of a failure, one line (the traceback is in `stdout.log`); null while "
                            "running", f"{TRAINER}, {SUPERVISOR}, {STOP}")
    stop_requested_at: float | None = key("unix seconds: `run stop` sent SIGTERM; null again after a resume",
                                          f"{STOP}, {RESUME}")
    killed_pids: list[int] | None = key("processes `run stop` had to SIGKILL after its timeout", STOP)
    resumed_from: str | None = key("the checkpoint folder the last resume continues from", RESUME)
    resumed_at: float | None = key("unix seconds of the last resume", RESUME)
    resumes: int | None = key("how many times the run was resumed", RESUME)
    machines: int | None = key("machines of a run over several (each machine > 0 has its own `status.node<N>.json`)",
                               LAUNCHER)
    machine_rank: int | None = key("this file's machine (0: status.json)", LAUNCHER)
    main_addr: str | None = key("address of machine 0, where the ranks meet", f"{LAUNCHER}, {SLURM_JOB}")
    main_port: int | None = key("its port", f"{LAUNCHER}, {SLURM_JOB}")
    slurm_job_id: str | None = key("the Slurm job (`job.sbatch`, submitted with `sbatch --parsable`); a resume "
                                   "submits a new one", f"{LAUNCHER}, {RESUME}")
    slurm_hosts: list[str] | None = key("the job's nodes, machine 0 first", SLURM_JOB)
    slurm_restarts: int | None = key("times Slurm requeued the job (`SLURM_RESTART_COUNT`)", SLURM_JOB)
    queued_at: float | None = key("unix seconds: the run joined its runs root's queue (`--gpus auto`)", LAUNCHER)
    gpus_per_run: int | None = key("GPUs a queued run waits for (`--gpus-per-run`; on the CPU it takes one slot)",
                                   LAUNCHER)
    queue_position: int | None = key("1-based place in the queue while `queued`; null once started", QUEUE)
    waiting_for: str | None = key("what a queued run waits for, as of the last pass over the queue", QUEUE)
    sweep: str | None = key("the sweep id, shared by every run of one `run sweep`", SWEEP)
    sweep_point: list[str] | None = key("this run's grid point: `key=value` overrides, one per varied key", SWEEP)
    derived: str | None = key("a run made from other runs' weights without training: `average` (of checkpoints) or "
                              "`ensemble` (of models); null for a trained run", DERIVER, choices=DERIVED_KINDS)
    sources: list[str] | None = key("what a derived run was made from: the checkpoint folders averaged, or the "
                                    "run directories / checkpoint folders ensembled (also in config.yaml's "
                                    "`lineage`)", DERIVER)

    @classmethod
    def check(cls, updates: dict) -> dict:
        """``updates`` ready to merge into status.json: TypeError on an unknown key or a wrong type."""
        unknown = sorted(updates.keys() - cls.KEYS)
        if unknown:
            raise TypeError(f"status.json has no key {', '.join(unknown)}: add it to Status in {__name__}")
        out = {}
        for s in cls.SPEC:
            if s.name in updates:
                v = _clean(updates[s.name])
                why = _write_problem(s, v)
                if why:
                    raise TypeError(f"status.json: {why}")
                out[s.name] = v
        return out

    @classmethod
    def clean(cls, raw: dict) -> dict:
        """status.json as read: documented keys of the wrong type are dropped (as if absent), others kept."""
        return {k: v for k, v in raw.items() if k not in _STATUS_SPEC or v is None or _STATUS_SPEC[k].type.ok(v)}

    @classmethod
    def of(cls, status: dict) -> "Status":
        """The typed record of a status as ``read_status`` gives it (its documented keys; the rest is ignored)."""
        return cls(**{k: v for k, v in cls.clean(status).items() if k in cls.KEYS})

    def __bool__(self) -> bool:
        """False for no status at all (no file, an unreadable one), as an empty dict is."""
        return any(getattr(self, s.name) is not None for s in self.SPEC)

_STATUS_SPEC = {s.name: s for s in Status.SPEC}


@record
class QueueFile(Record):
    """queue.json, in a runs root (not in a run directory): the runs waiting there for GPUs or CPU slots,
    replaced atomically under `.queue.lock` by whoever passes over the queue (a launcher, a run's supervisor
    as it exits, `run ls`, `run queue`)."""
    order: list[str] | None = key("the queued runs' directory names, first to start first", QUEUE)
    cpu_slots: int | None = key("runs the CPU takes at once when there is no GPU (`run queue slots`; 1)", QUEUE)
    idle_memory_mib: int | None = key("a GPU counts as idle below this much used memory (NVML; 1024)", QUEUE)


# ---- events.jsonl ------------------------------------------------------------------------------------

COMMON = (Spec("t", NUMBER, "unix seconds", "the writer", False, ()),
          Spec("kind", STR, "the event kind", "the writer", True, ()))


class Event(Record):
    """One line of events.jsonl; ``KIND`` is written as its ``kind``, the writer adds ``t``."""
    KIND: ClassVar[str] = ""
    WHEN: ClassVar[str] = ""
    BY: ClassVar[str] = TRAINER
    __slots__ = ()


@record
class StartEvent(Event):
    KIND, WHEN = EV_START, "once per session of the trainer (a resumed run has several)"
    step: int | None = key("the step the session starts from")
    resumed_from: str | None = key("path of the checkpoint resumed from, or null")
    world_size: int | None = key("processes")
    trainable_params: int | None = key("trainable parameters")
    total_params: int | None = key("all parameters")
    total_steps: int | None = key("as in status.json")


@record
class PhaseEvent(Event):
    KIND, WHEN = EV_PHASE, "when a curriculum phase starts"
    phase: int | None = key("1-based")
    name: str | None = key("the phase's name")
    step: int | None = key("the step it starts at")
    epochs: int | None = key("epochs planned")
    lr: float | None = key("peak learning rate")
    train_utterances: int | None = key("utterances in the phase's training set")
    train_hours: float | None = key("their hours")
    total_steps: int | None = key("as in status.json")


@record
class TrainEvent(Event):
    KIND, WHEN = EV_TRAIN, "every `train.log_every` steps"
    step: int | None = key("optimizer steps done")
    phase: int | None = key("1-based")
    epoch: int | None = key("1-based, within the phase")
    loss: float | None = key("mean CTC loss of the window", chart=True)
    lr: float | None = key("learning rate", chart=True)
    grad_norm: float | None = key("mean gradient norm of the window, before clipping", chart=True)
    samples_per_s: float | None = key("utterances a second, all processes", chart=True)
    samples: int | None = key("utterances trained on, cumulative")
    audio_seconds: float | None = key("audio seconds trained on, cumulative")
    padding: float | None = key("padded share of the window's batches")
    masked_utterances: int | None = key("utterances given SpecAugment, cumulative (the phase's `apply_prob`)")
    speed_perturbed: int | None = key("utterances played at another speed, cumulative (the phase's `speed_prob`)")
    augmented: dict[str, float] | None = key("utterances given each waveform augmentation, cumulative, by name "
                                             "(`concat`, `pitch`, `vtlp`, `reverb`, `noise`, `babble`, "
                                             "`colored_noise`, `gain`; the phase's `augment.waveform`); absent "
                                             "before the first")
    total_steps: int | None = key("as in status.json")
    lr_groups: list[str] | None = key("the names of `train.lr_groups` (not frozen), when the config has any; `lr` is "
                                      "then the LR of the parameters no group claims")
    group_lrs: list[float] | None = key("each of those groups' learning rate, in the order of `lr_groups`")


@record
class EvalEvent(Event):
    KIND, WHEN = EV_EVAL, "every `train.eval_every` steps and at each phase end"
    step: int | None = key("optimizer steps done")
    phase: int | None = key("1-based")
    loss: float | None = key("CTC loss on the validation sample", chart=True)
    per: float | None = key("phone error rate (a fraction)", chart=True)
    cer: float | None = key("character error rate; null when the Hangul composer is missing", chart=True)
    wer: float | None = key("word error rate", chart=True)
    n: int | None = key("utterances decoded")
    eval_seconds: float | None = key("seconds this evaluation took")
    eval_share: float | None = key("evaluation seconds over wall seconds of the run so far", chart=True)
    best: bool | None = key("improved the phase's monitored metric")
    per_age: dict[str, float] | None = key("PER per age group of the validation sample (the reports' groups: "
                                           "`5-6` ..., `unknown`)", chart=True)
    per_snr: dict[str, float] | None = key("PER per SNR bucket (`10-20 dB` ...)", chart=True)


@record
class CheckpointEvent(Event):
    KIND, WHEN = EV_CHECKPOINT, ("every `train.save_every` steps, at an evaluation that improves the "
                                  "phase's best, at each phase end and at a stop")
    step: int | None = key("optimizer steps done")
    phase: int | None = key("1-based")
    name: str | None = key("the folder under `checkpoints/` (`step-00001234`)")
    path: str | None = key("its absolute path")
    best: bool | None = key("the phase's best so far")
    metric: float | None = key("the monitored value; null for a stop checkpoint")


@record
class WarningEvent(Event):
    KIND, WHEN = EV_WARNING, "a skipped sample or skipped steps; a base head that lacks symbols or whose order is unverified"
    step: int | None = key("optimizer steps done")
    what: str | None = key(f"{' or '.join(f'`{w}`' for w in WARNING_KINDS)}", choices=WARNING_KINDS)
    message: str | None = key("what happened, for people")
    count: int | None = key("running total of that kind")
    id: str | None = key("the utterance, when one")
    symbols: list[str] | None = key("for `vocab_missing`: our symbols the base's head lacks")


@record
class HeartbeatEvent(Event):
    KIND, WHEN = EV_HEARTBEAT, "every `train.heartbeat_seconds`, from a thread, also during evaluation"
    step: int | None = key("optimizer steps done")
    work: int | None = key("batches done this session, training and evaluating: a run whose step and work stand "
                           "still is stalled, however regular its heartbeat")


@record
class TestEvent(Event):
    __test__ = False  # not a pytest test class
    KIND, WHEN = EV_TEST, "the final test evaluation, with the last phase's best weights"
    step: int | None = key("optimizer steps done")
    per: float | None = key("phone error rate")
    cer: float | None = key("character error rate")
    wer: float | None = key("word error rate")
    n: int | None = key("utterances decoded")
    split: str | None = key("the test manifest's split")
    per_age: dict[str, float] | None = key("PER per age group, as in `eval`")
    per_snr: dict[str, float] | None = key("PER per SNR bucket, as in `eval`")
    decoder: str | None = key("how it was decoded: `greedy`, `beam16`, `beam16+lm0.5` (absent: greedy)")
    lm: str | None = key("the phone LM of a beam decode (an ARPA file)")
    lm_weight_per: dict[str, float] | None = key("validation PER at each LM weight tried (`decode.tune_lm_weights`);"
                                                 " the lowest picked the weight")


@record
class EndEvent(Event):
    KIND, WHEN, BY = EV_END, "when the run ends", f"{TRAINER}, {SUPERVISOR} (when the trainer could not)"
    step: int | None = key("optimizer steps done")
    state: str | None = key("`finished`, `stopped` or `failed`", choices=FINAL_STATES)
    exit_code: int | None = key("the exit code")
    reason: str | None = key("why, one line")


EVENT_TYPES: dict[str, type[Event]] = {cls.KIND: cls for cls in (
    StartEvent, PhaseEvent, TrainEvent, EvalEvent, CheckpointEvent, WarningEvent, HeartbeatEvent, TestEvent,
    EndEvent)}


def event_dict(kind: str, t: float, fields: dict) -> dict:
    """The JSON object of an event, checked against its record."""
    try:
        cls = EVENT_TYPES[kind]
    except KeyError:
        raise TypeError(f"no event kind {kind!r}: add a record to {__name__}") from None
    return {"t": t, "kind": kind, **cls(**fields).to_dict()}


def event_problem(ev: Any) -> str | None:
    """Why a parsed events.jsonl line cannot be used (None: it can). A kind this version does not know
    is kept (only ``t`` is checked); its fields are nobody's business here."""
    if not isinstance(ev, dict):
        return "not a JSON object"
    for s in COMMON:
        why = _problem(s, ev.get(s.name))
        if why:
            return why
    cls = EVENT_TYPES.get(ev["kind"])
    return cls.problem(ev) if cls is not None else None


def event_columns(kind: str, events: list[dict]) -> tuple[dict[str, list], list[int]]:
    """The values of one kind's events field by field (None where missing), and the indices of the events
    that cannot be used. A column whose value types all fit is not looked at value by value."""
    cls = EVENT_TYPES[kind]
    columns, bad = {}, set()
    for s in (COMMON[0],) + cls.SPEC:
        col = [e.get(s.name) for e in events]
        columns[s.name] = col
        if s.type.fast is None or not set(map(type, col)) <= s.type.fast:
            bad.update(i for i, v in enumerate(col) if v is not None and not s.type.ok(v))
    return columns, sorted(bad)


# ---- decodes, predictions, traces ---------------------------------------------------------------------

@record
class DecodeRow(Record):
    """decodes.jsonl: `train.decodes_per_eval` rows per evaluation, always the same validation utterances,
    so one can follow them over time. Phones as space-separated strings, `|` between words."""
    t: float | None = key("unix seconds")
    step: int | None = key("optimizer steps done")
    phase: int | None = key("1-based")
    id: str | None = key("the utterance", required=True)
    ref: str | None = key("reference phones", required=True)
    hyp: str | None = key("decoded phones", required=True)


@record
class PredictionRow(Record):
    """predictions.jsonl: one row per test utterance of the last test evaluation, with its metadata;
    rewritten whole (temp file, fsync, rename). The reports read it."""
    id: str = key("the utterance", required=True)
    ref: str = key("reference phones", required=True)
    hyp: str = key("decoded phones", required=True)
    speaker: str | None = key("speaker id (hashed)")
    age: float | None = key("age in years, when the label gives one")
    age_range: tuple[float, float] | None = key("[lo, hi] years, when the label gives a range")
    gender: str | None = key("`M`, `F` or null")
    snr: float | None = key("signal-to-noise ratio, dB")
    duration: float | None = key("seconds")
    split: str | None = key("the manifest's split")
    pseudo_speaker: bool | None = key("true when the run trained on pseudo-labelled utterances of this speaker "
                                      "(`pseudo: true` rows of its train manifests); null when it trained on none")

    @property
    def age_years(self) -> float | None:
        """The age for bucketing: the exact age, else the middle of the range
        (the same rule as ``manifest.Utterance.age_years``)."""
        if self.age is not None:
            return self.age
        if self.age_range is not None:
            return (self.age_range[0] + self.age_range[1]) / 2
        return None


@record
class TraceRow(Record):
    """trace.rank<N>.jsonl (only with `train.trace_batches`): each rank appends the utterance ids of
    each micro-batch, to check that a resumed run sees the same batches."""
    step: int | None = key("the optimizer step the micro-batch belongs to")
    ids: list[str] | None = key("utterance ids of the micro-batch")
