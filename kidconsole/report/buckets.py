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

UNKNOWN = "unknown"

# Age groups: preschool (3-6), early primary (7-9), upper primary (10-12), older.
DEFAULT_EDGES: dict[str, tuple[float, ...]] = {
    "age_group": (3, 7, 10, 13),
    "snr": (10, 20, 30),
    "duration": (2, 4, 8),
}
UNITS = {"age_group": " y", "snr": " dB", "duration": " s"}
TITLES = {"age": "Age (years)", "age_group": "Age group", "snr": "SNR", "duration": "Duration",
          "gender": "Gender", "speaker": "Speaker"}
DIMENSIONS = ("age", "age_group", "snr", "duration", "gender", "speaker")


@dataclass(frozen=True)
class Buckets:
    """One dimension's buckets: ``labels[codes[i]]`` is utterance i's bucket."""
    dimension: str
    labels: list[str]
    codes: np.ndarray

    def members(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.codes == k)


def _fmt(x: float) -> str:
    return f"{x:g}"


def edge_labels(edges: Sequence[float], unit: str = "") -> list[str]:
    """``(10, 20)`` -> ``["<10", "10-20", ">=20"]`` with the unit appended."""
    labels = [f"<{_fmt(edges[0])}{unit}"]
    labels += [f"{_fmt(a)}-{_fmt(b)}{unit}" for a, b in zip(edges, edges[1:])]
    labels.append(f">={_fmt(edges[-1])}{unit}")
    return labels


def bin_values(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket index per value: 0 below the first edge, ``len(edges)`` at or above
    the last, ``len(edges) + 1`` for NaN (unknown)."""
    values = np.asarray(values, dtype=float)
    codes = np.searchsorted(np.asarray(edges, dtype=float), values, side="right")
    codes[np.isnan(values)] = len(edges) + 1
    return codes


def check_edges(edges: Sequence[float], key: str) -> tuple[float, ...]:
    edges = tuple(float(e) for e in edges)
    if not edges:
        raise KidconsoleError(f"{key}: give at least one bucket edge")
    if any(not math.isfinite(e) for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise KidconsoleError(f"{key}: bucket edges must be finite and strictly increasing, got {list(edges)}")
    return edges


def parse_edges(text: str, key: str) -> tuple[float, ...]:
    """Edges from ``"10,20,30"`` (a CLI option); the error names the option."""
    try:
        return check_edges([float(x) for x in text.split(",") if x.strip()], key)
    except ValueError:
        raise KidconsoleError(f"{key}: bucket edges are comma-separated numbers, got {text!r}") from None


def _numeric(name: str, values: list[float | None], edges: Sequence[float]) -> Buckets:
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    codes = bin_values(arr, edges)
    return Buckets(name, edge_labels(edges, UNITS.get(name, "")) + [UNKNOWN], codes)


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
    edges = {**DEFAULT_EDGES, **(edges or {})}
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
    raise KidconsoleError(f"unknown bucket dimension {dimension!r} (one of {', '.join(DIMENSIONS)})")
