"""Strata: age group x SNR bucket x duration bucket, as integer codes.

A bucket is a half-open interval ``[lo, hi)`` between consecutive edges; a
missing value (NaN) gets its own "unknown" bucket. Each utterance falls in one
joint cell; the subset builder keeps every split's share of hours per cell
(and so per dimension) close to the corpus's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kidconsole.errors import KidconsoleError

DEFAULT_AGE_EDGES = (5.0, 7.0, 9.0, 11.0, 18.0)   # <5, 5-6, 7-8, 9-10, 11-17, 18+ (adults)
DEFAULT_SNR_EDGES = (10.0, 20.0, 30.0)            # dB: <10, 10-20, 20-30, 30+
DEFAULT_DURATION_EDGES = (2.0, 4.0, 8.0)          # s: <2, 2-4, 4-8, 8+
UNKNOWN = "unknown"
DIMENSIONS = ("age", "snr", "duration")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def bucket_labels(edges: tuple[float, ...], *, integer_ages: bool = False, unit: str = "") -> list[str]:
    """Labels of the ``len(edges) + 1`` buckets.

    With ``integer_ages`` a bucket ``[5, 7)`` reads "5-6" (whole years), else "5-7".
    """
    labels = [f"<{_num(edges[0])}{unit}"]
    for lo, hi in zip(edges, edges[1:]):
        if integer_ages and float(lo).is_integer() and float(hi).is_integer():
            labels.append(_num(lo) if hi - lo == 1 else f"{_num(lo)}-{_num(hi - 1)}")
        else:
            labels.append(f"{_num(lo)}-{_num(hi)}{unit}")
    labels.append(f"{_num(edges[-1])}+{unit}" if integer_ages or not unit else f">={_num(edges[-1])}{unit}")
    return labels


def check_edges(name: str, edges) -> tuple[float, ...]:
    """Edges as a strictly increasing tuple of floats, or an error naming the option."""
    try:
        out = tuple(float(e) for e in edges)
    except (TypeError, ValueError) as e:
        raise KidconsoleError(f"{name}: bucket edges must be numbers, got {edges!r}") from e
    if not out:
        raise KidconsoleError(f"{name}: give at least one bucket edge")
    if any(b <= a for a, b in zip(out, out[1:])) or not all(np.isfinite(out)):
        raise KidconsoleError(f"{name}: bucket edges must be finite and strictly increasing, got {list(edges)}")
    return out


@dataclass(frozen=True)
class Strata:
    """Bucket edges per dimension and the joint cell coding."""

    age_edges: tuple[float, ...] = DEFAULT_AGE_EDGES
    snr_edges: tuple[float, ...] = DEFAULT_SNR_EDGES
    duration_edges: tuple[float, ...] = DEFAULT_DURATION_EDGES

    def __post_init__(self):
        object.__setattr__(self, "age_edges", check_edges("age_edges", self.age_edges))
        object.__setattr__(self, "snr_edges", check_edges("snr_edges", self.snr_edges))
        object.__setattr__(self, "duration_edges", check_edges("duration_edges", self.duration_edges))

    def labels(self, dim: str) -> list[str]:
        """Bucket labels of one dimension; the last is "unknown" (duration has none)."""
        if dim == "age":
            return bucket_labels(self.age_edges, integer_ages=True) + [UNKNOWN]
        if dim == "snr":
            return bucket_labels(self.snr_edges, unit=" dB") + [UNKNOWN]
        if dim == "duration":
            return bucket_labels(self.duration_edges, unit=" s")
        raise KeyError(dim)

    @property
    def sizes(self) -> tuple[int, int, int]:
        return tuple(len(self.labels(d)) for d in DIMENSIONS)

    @property
    def n_cells(self) -> int:
        a, s, d = self.sizes
        return a * s * d

    @staticmethod
    def _bucket(values: np.ndarray, edges: tuple[float, ...], unknown: bool) -> np.ndarray:
        idx = np.searchsorted(np.asarray(edges), values, side="right").astype(np.int16)
        if unknown:
            idx[np.isnan(values)] = len(edges) + 1
        return idx

    def buckets(self, age: np.ndarray, snr: np.ndarray, duration: np.ndarray) -> dict[str, np.ndarray]:
        """Bucket index per dimension, per utterance (NaN -> the unknown bucket)."""
        return {
            "age": self._bucket(np.asarray(age, dtype=np.float64), self.age_edges, True),
            "snr": self._bucket(np.asarray(snr, dtype=np.float64), self.snr_edges, True),
            "duration": self._bucket(np.asarray(duration, dtype=np.float64), self.duration_edges, False),
        }

    def cells(self, age: np.ndarray, snr: np.ndarray, duration: np.ndarray) -> np.ndarray:
        """Joint cell code per utterance: ``(age * n_snr + snr) * n_duration + duration``."""
        b = self.buckets(age, snr, duration)
        _, ns, nd = self.sizes
        return ((b["age"].astype(np.int32) * ns + b["snr"]) * nd + b["duration"]).astype(np.int32)

    def cell_dims(self, cells: np.ndarray) -> dict[str, np.ndarray]:
        """The per-dimension bucket of each joint cell code."""
        _, ns, nd = self.sizes
        cells = np.asarray(cells)
        return {"age": cells // (ns * nd), "snr": (cells // nd) % ns, "duration": cells % nd}

    def cell_label(self, cell: int) -> str:
        dims = self.cell_dims(np.array([cell]))
        return " / ".join(self.labels(d)[int(dims[d][0])] for d in DIMENSIONS)

    def as_dict(self) -> dict:
        return {"age_edges": list(self.age_edges), "snr_edges": list(self.snr_edges),
                "duration_edges": list(self.duration_edges)}
