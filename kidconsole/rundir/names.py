"""The names of the run directory: files, states, event kinds, warning kinds, trainer entry points."""

CONFIG = "config.yaml"
STATUS = "status.json"
EVENTS = "events.jsonl"
DECODES = "decodes.jsonl"
PREDICTIONS = "predictions.jsonl"
STDOUT = "stdout.log"
CHECKPOINTS = "checkpoints"
EXPORTS = "exports"
COMPLETE = "COMPLETE"  # marker file inside a checkpoint folder once it is whole
STATUS_LOCK = ".status.lock"
# exports/<kind>/ of a scored export (onnx-fp32, onnx-int8 and the PyTorch reference torch-fp32): a run
# directory of its own, plus what the export measured and, for ONNX, the model
EXPORT_RECORD = "export.json"
EXPORTS_TABLE = "exports.md"     # exports/exports.md: the table of every kind, rendered from their records
ONNX_MODEL = "model.onnx"
EXPORT_LOG = "export.log"        # exports/export.log: the output of an export started in the background
PHONE_LM = "lm/phones.arpa"      # exports/lm/phones.arpa (+ phones.json): the phone LM a beam test decode built
ALIGNMENTS = "alignments.jsonl"  # kidconsole align RUN ...: the forced alignments of a run's model, the console's
# in a runs root, beside its run directories: the queue of runs waiting for GPUs (or CPU slots), and its lock
QUEUE = "queue.json"
QUEUE_LOCK = ".queue.lock"
# mirrors (the config's report_to, `kidconsole run mirror`): TensorBoard event files in the run directory; the
# default MLflow store and its artifacts in the runs root
MIRRORS = ("tensorboard", "mlflow")  # what report_to and `run mirror --to` name
TENSORBOARD = "tensorboard"
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"


JOB_SCRIPT = "job.sbatch"  # a Slurm run's batch script, as submitted


def node_status_name(machine_rank: int) -> str:
    """The status of machine ``machine_rank`` > 0 of a run over several machines (status.json's record):
    its own supervisor's pid and exit; machine 0 writes status.json, the run's only status."""
    return f"status.node{machine_rank}.json"


def trace_name(rank: int) -> str:
    """The utterance-id trace of one rank (``train.trace_batches``)."""
    return f"trace.rank{rank}.jsonl"


# States written to status.json. "stalled" and "interrupted" are never written:
# readers derive them (no heartbeat for a while; process gone without a final state).
# "queued": the run directory exists, no process yet; it waits in its runs root's queue.
QUEUED = "queued"
STARTING, RUNNING, EVALUATING = "starting", "running", "evaluating"
STOPPED, FINISHED, FAILED = "stopped", "finished", "failed"
STALLED, INTERRUPTED = "stalled", "interrupted"
PENDING = "pending"  # derived too: a Slurm run whose job waits in the queue
LIVE_STATES = (STARTING, RUNNING, EVALUATING)
FINAL_STATES = (STOPPED, FINISHED, FAILED)
WRITTEN_STATES = (QUEUED,) + LIVE_STATES + FINAL_STATES
STATES = (QUEUED, PENDING) + LIVE_STATES + (STALLED,) + FINAL_STATES + (INTERRUPTED,)
# what can still be stopped: a live run, or one whose heartbeat went quiet
STOPPABLE_STATES = (PENDING,) + LIVE_STATES + (STALLED,)

# The kinds of run (status.json's `kind`): how a run is started, stopped and resumed (kidconsole/runs/kinds/).
# local: one supervised process tree on this machine; queued: a local run that waits in its runs root's queue
# for GPUs or a CPU slot; slurm: a Slurm job; machines: one run over several machines; job: a run made
# without training (an average, an ensemble, an export job), never resumed.
LOCAL, QUEUED_KIND, SLURM, MACHINES, JOB = "local", "queued", "slurm", "machines", "job"
RUN_KINDS = (LOCAL, QUEUED_KIND, SLURM, MACHINES, JOB)

# Event kinds in events.jsonl (fields per kind: records.py, docs/run-directory.md).
EV_START, EV_TRAIN, EV_EVAL, EV_PHASE = "start", "train", "eval", "phase"
EV_CHECKPOINT, EV_WARNING, EV_HEARTBEAT, EV_TEST, EV_END = "checkpoint", "warning", "heartbeat", "test", "end"

# What a warning event is about (its ``what``).
BAD_SAMPLE, NONFINITE_LOSS = "bad_sample", "nonfinite_loss"
# the base checkpoint's head: symbols of ours it lacks, and a head whose order no vocab.json confirms
VOCAB_MISSING, VOCAB_UNVERIFIED = "vocab_missing", "vocab_unverified"
# a complete checkpoint that could not be loaded on resume (the previous one was resumed instead)
CHECKPOINT_DAMAGED = "checkpoint_damaged"
WARNING_KINDS = (BAD_SAMPLE, NONFINITE_LOSS, VOCAB_MISSING, VOCAB_UNVERIFIED, CHECKPOINT_DAMAGED)
SKIP_WARNINGS = (BAD_SAMPLE,)  # warnings that count skipped samples

# The project's own trainer entry points (``python -m MODULE``): what a launch or a resume may start.
TRAINER, SCORER = "trainers.train", "trainers.score"
TRAINER_MODULES = (TRAINER, SCORER)
# The supervisor (the light half's) as the trainers name it: a run's own process that wrote the run's end starts
# ``python -m SUPERVISOR AFTER_END RUN_DIR``, which does the supervisor's last duty (a pass over the queue) if
# the supervisor is gone: the trainers never import the runs' machinery (docs/architecture.md).
SUPERVISOR_MODULE, AFTER_END = "kidconsole.runs.supervise", "--after-end"
# runs made from other runs' weights, without training: the average of checkpoints, an ensemble of models
AVERAGER, ENSEMBLER = "trainers.average", "trainers.ensemble"
EXPORTER = "trainers.export_job"  # a run's ONNX / INT8 exports: a job whose run directory is RUN/exports
AVERAGE, ENSEMBLE = "average", "ensemble"
DERIVED_KINDS = (AVERAGE, ENSEMBLE)
