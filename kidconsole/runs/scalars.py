"""Scalars written by other tools (TensorBoard event files, a Hugging Face ``trainer_state.json``) as our chart
series: one ``Series`` per key and x axis, keys named as ours where they mean the same thing.

Hugging Face's Trainer logs ``loss``, ``learning_rate``, ``grad_norm``, ``epoch`` and ``eval_*`` /
``test_*`` metrics; its TensorBoard callback writes them as ``train/loss``, ``eval/loss`` ... (its
``rewrite_logs``: ``eval_`` -> ``eval/``, ``test_`` -> ``test/``, the rest under ``train/``). The same rule
names a ``log_history`` entry's keys here, so a run read from either source charts the same. Where our
events have the same quantity under another name (``learning_rate`` is our ``lr``) the key is ours, so
runs of both kinds overlay; any other tag keeps its own name.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from kidconsole.runs.series import Series

AXES = ("step", "time")  # other tools' scalars carry a step and (TensorBoard) a wall time; no samples count
OURS = {"train/learning_rate": "train/lr", "train/train_samples_per_second": "train/samples_per_s"}


def hf_key(name: str) -> str:
    """A Trainer log key (``eval_loss``, ``learning_rate``) as its TensorBoard tag, then as our series key."""
    for prefix in ("eval", "test"):
        if name.startswith(prefix + "_"):
            return f"{prefix}/{name[len(prefix) + 1:]}"
    return series_key(f"train/{name}")


def series_key(tag: str) -> str:
    """A TensorBoard tag as our series key (ours where the meaning is ours, else the tag itself)."""
    return OURS.get(tag, tag)


class ScalarSeries:
    """Points by key, against step and (where known) wall time."""

    def __init__(self) -> None:
        self.by: dict[str, dict[str, Series]] = {a: {} for a in AXES}
        self.points = 0

    def add(self, key: str, steps: Iterable[float], values: Iterable[float],
            times: Iterable[float] | None = None) -> None:
        self._put(Series.extend, key, steps, values, times)

    def prepend(self, key: str, steps: Iterable[float], values: Iterable[float],
                times: Iterable[float] | None = None) -> None:
        """Older points before those in (history read backwards)."""
        self._put(Series.prepend, key, steps, values, times)

    def _put(self, how, key: str, steps: Iterable[float], values: Iterable[float],
             times: Iterable[float] | None) -> None:
        steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
        if not len(steps):
            return
        how(self.by["step"].setdefault(key, Series()), steps, values)
        if times is not None:
            how(self.by["time"].setdefault(key, Series()), np.asarray(times, dtype=float), values)
        self.points += len(steps)
