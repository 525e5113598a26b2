"""Two runs on the same test utterances: per-bucket deltas with bootstrap
confidence intervals.

Utterances of one child are not independent, so the bootstrap resamples
speakers (with their summed counts), not utterances (an utterance without a
speaker is a unit of its own); both runs get the same
resample (a paired bootstrap). Each bucket's generator is seeded from the
seed and the bucket's name, so a result does not depend on which other
buckets exist. A delta whose interval holds 0 is not progress.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kidconsole.errors import KidconsoleError
from kidconsole.report.buckets import UNKNOWN, assign
from kidconsole.report.compute import D, H, I, METRICS, S, Analysis

COMPARE_DIMENSIONS = ("age", "age_group", "snr", "duration", "gender")


@dataclass
class Delta:
    dimension: str
    label: str
    metric: str
    n: int              # utterances (in both runs)
    speakers: int
    rate_a: float
    rate_b: float
    lo: float           # confidence interval of rate_b - rate_a
    hi: float

    @property
    def delta(self) -> float:
        return self.rate_b - self.rate_a

    @property
    def significant(self) -> bool:
        """The interval leaves out 0: the runs differ beyond speaker resampling noise."""
        return bool(self.lo > 0 or self.hi < 0)


@dataclass
class Comparison:
    name_a: str
    name_b: str
    n_common: int
    only_a: int         # utterances of one run missing from the other (left out)
    only_b: int
    n_boot: int
    level: float
    seed: int
    deltas: list[Delta]


def _rate(err: np.ndarray, ref: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref > 0, err / ref, np.nan)


def bootstrap_delta(err_a: np.ndarray, ref_a: np.ndarray, err_b: np.ndarray, ref_b: np.ndarray,
                    n_boot: int = 1000, level: float = 0.95,
                    rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Interval of ``rate_b - rate_a`` from per-speaker summed errors and
    reference lengths, resampling speakers with replacement."""
    k = len(err_a)
    if k == 0:
        return float("nan"), float("nan")
    rng = rng or np.random.default_rng(0)
    idx = rng.integers(0, k, size=(n_boot, k))
    deltas = _rate(err_b[idx].sum(1), ref_b[idx].sum(1)) - _rate(err_a[idx].sum(1), ref_a[idx].sum(1))
    deltas = deltas[np.isfinite(deltas)]
    if not len(deltas):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(deltas, [tail, 100 - tail])
    return float(lo), float(hi)


def _bucket_seed(seed: int, dimension: str, label: str, metric: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{dimension}/{label}/{metric}".encode())])


def compare(a: Analysis, b: Analysis, name_a: str = "A", name_b: str = "B",
            dimensions: Sequence[str] = COMPARE_DIMENSIONS, edges: dict | None = None,
            metrics: Sequence[str] = ("per",), n_boot: int = 1000, level: float = 0.95,
            seed: int = 0) -> Comparison:
    """Deltas (b minus a) overall and per bucket, on the utterances both runs hold."""
    pos_b = {r.id: i for i, r in enumerate(b.rows)}
    ia = np.array([i for i, r in enumerate(a.rows) if r.id in pos_b], dtype=np.int64)
    if not len(ia):
        raise KidconsoleError(f"{name_a} and {name_b} share no utterance id: nothing to compare")
    ib = np.array([pos_b[a.rows[i].id] for i in ia], dtype=np.int64)
    rows = [a.rows[i] for i in ia]
    spk = assign(rows, "speaker").codes.copy()
    anonymous = np.array([r.speaker is None for r in rows], dtype=bool)
    if anonymous.any():  # no speaker given: each such utterance is its own resampling unit
        spk[anonymous] = spk.max() + 1 + np.arange(int(anonymous.sum()))
    groups = [("all", "all", np.arange(len(ia)))]
    for dim in dimensions:
        bk = assign(rows, dim, edges)
        groups += [(dim, label, bk.members(j)) for j, label in enumerate(bk.labels)]
    deltas = []
    for metric in metrics:
        m = METRICS.index(metric)
        ca, cb = a.counts[ia, m], b.counts[ib, m]
        err_a, ref_a = ca[:, S] + ca[:, D] + ca[:, I], ca[:, H] + ca[:, S] + ca[:, D]
        err_b, ref_b = cb[:, S] + cb[:, D] + cb[:, I], cb[:, H] + cb[:, S] + cb[:, D]
        for dim, label, members in groups:
            if label == UNKNOWN and not len(members):
                continue
            # per-speaker sums within the bucket
            _, sp = np.unique(spk[members], return_inverse=True)
            k = int(sp.max()) + 1 if len(sp) else 0
            sums = [np.bincount(sp, weights=x[members], minlength=k) for x in (err_a, ref_a, err_b, ref_b)]
            ra = _rate(sums[0].sum(), sums[1].sum()) if k else np.nan
            rb = _rate(sums[2].sum(), sums[3].sum()) if k else np.nan
            lo, hi = bootstrap_delta(*sums, n_boot=n_boot, level=level,
                                     rng=_bucket_seed(seed, dim, label, metric))
            deltas.append(Delta(dim, label, metric, len(members), k, float(ra), float(rb), lo, hi))
    return Comparison(name_a, name_b, len(ia), a.n - len(ia), b.n - len(ia), n_boot, level, seed, deltas)
