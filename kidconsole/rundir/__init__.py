"""The run directory: the one contract between the console and the trainers.

A run is fully described by its directory; both halves use only this package
to name its files, write and read its records and pick its checkpoints:

- ``names``: file names, states, event and warning kinds, the trainer entry points;
- ``records``: typed records of status.json, each event kind, decode, prediction and trace rows;
- ``files``: JSONL and atomic writers, status.json read and merged under a lock;
- ``checkpoints``: checkpoint naming, completeness and selection;
- ``ending``: a run's end (final status and ``end`` event), written by one function;
- ``process``: how status.json names a process (its identity, unmoved by clock steps);
- ``docs``: docs/run-directory.md's tables, generated from the records
  (``python -m kidconsole.rundir --docs``).

Light: no torch. The live readers (tailing, chart series, derived states) live in ``kidconsole.runs``.
"""

from kidconsole.rundir.checkpoints import (
    TMP_PREFIX, checkpoint_folders, checkpoint_name, checkpoint_step, choose_checkpoints, complete_checkpoints,
    last_phase_checkpoints, newest_checkpoint,
    seal_checkpoint, tmp_checkpoint, unfinished_writes,
)
from kidconsole.rundir.ending import write_end
from kidconsole.rundir.files import (
    EventWriter, JsonlWriter, atomic_write_text, atomic_writer, read_status, read_status_record, remove_temp_files,
    update_status, write_rows,
)
from kidconsole.rundir.names import *  # noqa: F401,F403 (file names, states, kinds: the contract's vocabulary)
from kidconsole.rundir.records import (
    EVENT_TYPES, CheckpointEvent, DecodeRow, EndEvent, EvalEvent, Event, HeartbeatEvent, PhaseEvent, PredictionRow,
    QueueFile, Record, StartEvent, Status, TestEvent, TraceRow, TrainEvent, WarningEvent, event_columns, event_problem,
    usable_rows,
)
