"""The training loop's records: ``LoopState`` (all the progress a resume needs, saved as trainer_state.json in
every checkpoint) and ``Window`` (what the steps since the last ``train`` event add up to).

Both carry named counters besides their fixed fields: ``Window.count(name, n)`` adds to the window, the log
sums the window over every process and adds it to ``LoopState.counters[name]``, and the ``train`` event
carries each running total under its name (a field of ``rundir.TrainEvent``: ``masked_utterances``,
``speed_perturbed``, and whatever an augmentation counts).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class LoopState:
    """Where the run is and what it has seen: the whole of a resume's knowledge (trainer_state.json)."""
    phase: int = 0                 # 0-based, the phase running (len(phases) once all are done)
    epoch: int = 0                 # 0-based, within the phase
    batch: int = 0                 # micro-batches of this epoch done (this process's share)
    step: int = 0                  # optimizer steps, the run's
    phase_step: int = 0            # optimizer steps, the phase's
    best: float | None = None      # the phase's best monitored value
    best_checkpoint: str | None = None
    evals_since_best: int = 0
    phase_bests: dict[str, str | None] = field(default_factory=dict)  # phase index -> its best checkpoint
    phase_started: bool = False
    phase_done: bool = False
    last_eval_step: int = -1
    last_save_step: int = -1
    samples: int = 0               # utterances trained on
    audio_seconds: float = 0.0
    bad_samples: int = 0           # skipped training samples (the bad-sample budget's count)
    seen_samples: int = 0          # training samples read, bad or good
    nonfinite_losses: int = 0      # steps skipped for a non-finite loss or gradient
    nonfinite_streak: int = 0
    best_loss_finite: bool = True
    reported_manifests: list[str] = field(default_factory=list)  # manifests whose unusable rows were told
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    wall_seconds: float = 0.0      # wall time of the sessions before this one (written at each save)
    finished: bool = False
    counters: dict[str, int] = field(default_factory=dict)  # running totals a train event carries by name

    def update(self, **values: Any) -> None:
        for name, value in values.items():
            if name not in _FIELDS:
                raise AttributeError(f"LoopState has no field {name!r}")
            setattr(self, name, value)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> "LoopState":
        """A saved state; a key this version does not know is dropped, one it lacks takes its default. Counters
        written at the top level by earlier versions (masked_utterances, speed_perturbed) join ``counters``."""
        saved = dict(saved)
        counters = dict(saved.pop("counters", None) or {})
        for old in _TOP_LEVEL_COUNTERS:
            if old in saved:
                counters.setdefault(old, saved.pop(old))
        return cls(**{k: v for k, v in saved.items() if k in _FIELDS}, counters=counters)


_FIELDS = {f.name for f in fields(LoopState)}
_TOP_LEVEL_COUNTERS = ("masked_utterances", "speed_perturbed")


@dataclass
class Window:
    """The steps since the last ``train`` event: sums this process adds to, summed over every process at the log."""
    steps: int = 0
    loss: Any = 0.0      # a device tensor once a micro-batch added to it (no host sync per step)
    micro: int = 0       # micro-batches with a loss
    utts: int = 0
    audio: float = 0.0   # audio seconds
    padded: float = 0.0  # padded seconds
    bad: int = 0         # bad samples skipped
    seen: int = 0        # samples read, bad or good
    nonfinite: int = 0   # steps skipped
    norm: float = 0.0    # summed gradient norms of the finite steps
    norms: int = 0
    lr: float = 0.0
    group_lrs: list[float] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    SUMMED = ("loss", "micro", "utts", "audio", "padded", "bad", "seen", "nonfinite", "norm", "norms")

    def count(self, name: str, n: float) -> None:
        """Add ``n`` to the named counter (its running total goes into the train event's field ``name``)."""
        self.counters[name] = self.counters.get(name, 0) + n

    def sums(self, counter_names: list[str]) -> list[float]:
        """The values summed over processes at the log: the fixed ones, then ``counter_names`` in that order."""
        return [float(getattr(self, k)) for k in self.SUMMED] + [float(self.counters.get(k, 0)) for k in counter_names]
