"""What evaluation costs a run: its share of wall time, seconds per evaluation, the evaluation time still
ahead, and the config keys that bring the share down when it passes the warning threshold.

The console's cards and `run ls` both use it, so they agree on the figures and on the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

EVAL_SHARE_WARN = 0.20  # the default threshold: past it the card says what to change
ADVICE_KEYS = ("train.eval_every", "data.valid_utterances")
ADVICE = f"raise {ADVICE_KEYS[0]} or lower {ADVICE_KEYS[1]}"
# the same advice for a run of the Hugging Face Trainer, in its arguments' words
HF_ADVICE = "raise eval_steps or use a smaller eval_dataset"


@dataclass(frozen=True)
class EvalCost:
    share: float | None     # evaluation seconds over wall seconds so far
    seconds: float | None   # the newest evaluation's seconds
    left: float | None      # projected evaluation seconds until the last step
    advice: str = ADVICE    # what brings the share down, in the words of the run's own settings

    def too_costly(self, threshold: float = EVAL_SHARE_WARN) -> bool:
        return self.share is not None and self.share > threshold


def eval_time_left(eval_steps: Sequence[float], seconds: float | None, step: float | None,
                   total: float | None) -> float | None:
    """Evaluations still to come (the steps left over the gap between the two newest evaluations, or the
    first evaluation's step when there is one) times the newest evaluation's seconds. Phase ends add an
    evaluation each: the projection is a floor."""
    if not eval_steps or seconds is None or step is None or not total:
        return None
    gap = eval_steps[-1] - eval_steps[-2] if len(eval_steps) > 1 else eval_steps[-1]
    if gap <= 0:
        return None
    return math.ceil(max(0.0, total - step) / gap) * seconds


def worst_bucket(per_bucket: dict[str, float | None] | None) -> tuple[str, float] | None:
    """The bucket with the highest PER (``unknown`` only when nothing else was scored)."""
    from kidconsole.subset.strata import UNKNOWN  # numpy: not at the CLI's start

    known = {k: v for k, v in (per_bucket or {}).items() if v is not None}
    pool = {k: v for k, v in known.items() if k != UNKNOWN} or known
    if not pool:
        return None
    label = max(pool, key=lambda k: pool[k])
    return label, pool[label]
