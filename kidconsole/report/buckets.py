"""Which bucket each utterance falls in: age (each year and groups), SNR,
duration, gender, speaker.

Numeric buckets are half-open ``[lo, hi)``: a value equal to an edge goes to
the bucket above it (an SNR of exactly 20 dB is in "20-30 dB"). Missing
values go to the ``unknown`` bucket, always listed last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kidconsole.errors import KidconsoleError
from kidconsole.report.predictions import Prediction
# The subset builder's strata edges, so a report's buckets are the ones the subsets were balanced on.
from kidconsole.subset.strata import (DEFAULT_AGE_EDGES, DEFAULT_DURATION_EDGES, DEFAULT_SNR_EDGES, UNKNOWN,
                                      bucket_labels, check_edges)

DEFAULT_EDGES: dict[str, tuple[float, ...]] = {
    "age_group": DEFAULT_AGE_EDGES,
    "snr": DEFAULT_SNR_EDGES,
    "duration": DEFAULT_DURATION_EDGES,
}
TITLES = {"age": "Age (years)", "age_group": "Age group", "snr": "SNR", "duration": "Duration",
          "gender": "Gender", "speaker": "Speaker", "pseudo": "Speaker's training labels"}
DIMENSIONS = ("age", "age_group", "snr", "duration", "gender", "speaker")
# Only in the report of a run that trained on pseudo-labelled speakers (predictions' pseudo_speaker).
PSEUDO = "pseudo"
PSEUDO_LABELS = {True: "pseudo-labelled speaker", False: "labelled or unseen speaker"}


@dataclass(frozen=True)
class Buckets:
    """One dimension's buckets: ``labels[codes[i]]`` is utterance i's bucket."""
    dimension: str
    labels: list[str]
    codes: np.ndarray

    def members(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.codes == k)


def edge_labels(dimension: str, edges: Sequence[float]) -> list[str]:
    """Labels of the ``len(edges) + 1`` buckets: ages in whole years ("5-6", "18+"),
    SNR in dB and durations in seconds (the subset builder's labels)."""
    if dimension == "age_group":
        return bucket_labels(tuple(edges), integer_ages=True)
    return bucket_labels(tuple(edges), unit={"snr": " dB", "duration": " s"}[dimension])


def bin_values(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket index per value: 0 below the first edge, ``len(edges)`` at or above
    the last, ``len(edges) + 1`` for NaN (unknown)."""
    values = np.asarray(values, dtype=float)
    codes = np.searchsorted(np.asarray(edges, dtype=float), values, side="right")
    codes[np.isnan(values)] = len(edges) + 1
    return codes


def parse_edges(text: str, key: str) -> tuple[float, ...]:
    """Edges from ``"10,20,30"`` (a CLI option); the error names the option."""
    try:
        return check_edges(key, [float(x) for x in text.split(",") if x.strip()])
    except ValueError:
        raise KidconsoleError(f"{key}: bucket edges are comma-separated numbers, got {text!r}") from None


def _numeric(name: str, values: list[float | None], edges: Sequence[float]) -> Buckets:
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    codes = bin_values(arr, edges)
    return Buckets(name, edge_labels(name, edges) + [UNKNOWN], codes)


def _categorical(name: str, values: list[str | None], key=None) -> Buckets:
    distinct = sorted({v for v in values if v is not None}, key=key)
    labels = distinct + ([UNKNOWN] if any(v is None for v in values) else [])
    index = {v: i for i, v in enumerate(distinct)}
    unknown = len(distinct)
    codes = np.fromiter((index.get(v, unknown) if v is not None else unknown for v in values),
                        dtype=np.int64, count=len(values))
    return Buckets(name, labels, codes)


def assign(rows: Sequence[Prediction], dimension: str,
           edges: dict[str, Sequence[float]] | None = None) -> Buckets:
    """The buckets of one dimension (one of ``DIMENSIONS``) for ``rows``."""
    edges = {**DEFAULT_EDGES, **{k: check_edges(k, v) for k, v in (edges or {}).items()}}
    if dimension == "age":
        years = [None if r.age_years is None else str(int(math.floor(r.age_years))) for r in rows]
        return _categorical("age", years, key=int)
    if dimension == "age_group":
        return _numeric(dimension, [r.age_years for r in rows], edges[dimension])
    if dimension == "snr":
        return _numeric(dimension, [r.snr for r in rows], edges[dimension])
    if dimension == "duration":
        return _numeric(dimension, [r.duration for r in rows], edges[dimension])
    if dimension == "gender":
        return _categorical("gender", [r.gender.strip().upper() if r.gender and r.gender.strip() else None
                                       for r in rows])
    if dimension == "speaker":
        return _categorical("speaker", [r.speaker for r in rows])
    if dimension == PSEUDO:
        labels = list(PSEUDO_LABELS.values())
        codes = np.fromiter((0 if r.pseudo_speaker else 1 if r.pseudo_speaker is False else 2 for r in rows),
                            dtype=np.int64, count=len(rows))
        return Buckets(PSEUDO, labels + [UNKNOWN], codes)
    raise KidconsoleError(f"unknown bucket dimension {dimension!r} (one of {', '.join(DIMENSIONS)})")
