"""The chart series an event's values become, named once for the readers (the console, `run ls`) and the mirrors
(TensorBoard, MLflow): ``train/<field>`` and ``eval/<field>`` for the records' chart fields,
``eval/<field>/<bucket>`` for a value per bucket (PER by age group: ``eval/per_age/5-6``), ``train/lr:<group>``
for each ``train.lr_groups`` group, ``test/<field>`` and ``test/<field>/<bucket>`` for the final test."""

from kidconsole.rundir.records import BY_BUCKET, NUMBER, EvalEvent, TestEvent, TrainEvent

TRAIN_FIELDS = TrainEvent.CHART
_EVAL_TYPES = {s.name: s.type for s in EvalEvent.SPEC}
EVAL_FIELDS = tuple(f for f in EvalEvent.CHART if _EVAL_TYPES[f] is not BY_BUCKET)
BUCKET_FIELDS = tuple(f for f in EvalEvent.CHART if _EVAL_TYPES[f] is BY_BUCKET)
TEST_FIELDS = tuple(s.name for s in TestEvent.SPEC if s.type is NUMBER)          # per, cer, wer
TEST_BUCKET_FIELDS = tuple(s.name for s in TestEvent.SPEC if s.type is BY_BUCKET)  # per_age, per_snr
LR_GROUP_PREFIX = "train/lr:"


def lr_group_metric(name: str) -> str:
    """The chart series of one ``train.lr_groups`` group's learning rate."""
    return f"{LR_GROUP_PREFIX}{name}"
