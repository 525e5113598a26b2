"""A run against a reference (a baseline, or another run) on the same test
utterances: per-bucket deltas with bootstrap confidence intervals.

One sign everywhere: delta = run - reference, so for error rates a negative
delta means the run is better.

Utterances of one child are not independent, so the bootstrap resamples
speakers (with their summed counts), not utterances (an utterance without a
speaker is a unit of its own); both runs get the same
resample (a paired bootstrap). One speaker gives no interval (every resample
is that speaker); fewer than ``MIN_SPEAKERS`` give a low-confidence one. Each
bucket's generator is seeded from the seed and the bucket's name, so a result
does not depend on which other buckets exist. A delta whose interval holds 0
is not progress.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kidconsole.errors import KidconsoleError
from kidconsole.report.buckets import UNKNOWN, assign
from kidconsole.report.compute import D, H, I, METRICS, MIN_SPEAKERS, S, Analysis

COMPARE_DIMENSIONS = ("age", "age_group", "snr", "duration", "gender")


@dataclass
class Delta:
    dimension: str
    label: str
    metric: str
    n: int              # utterances (in both runs)
    speakers: int       # resampling units: speakers, and utterances without one
    rate: float         # the run's
    reference: float    # the reference's
    lo: float           # confidence interval of rate - reference; NaN without one (fewer than 2 speakers)
    hi: float

    @property
    def delta(self) -> float:
        return self.rate - self.reference

    @property
    def significant(self) -> bool:
        """The interval leaves out 0: the runs differ beyond speaker resampling noise."""
        return bool(self.lo > 0 or self.hi < 0)

    @property
    def low_confidence(self) -> bool:
        return 0 < self.speakers < MIN_SPEAKERS


@dataclass
class Comparison:
    name: str           # the run
    reference: str      # what it is compared against
    n_common: int
    only_run: int       # utterances of one side missing from the other (left out)
    only_reference: int
    n_boot: int
    level: float
    seed: int
    deltas: list[Delta]


def _rate(err: np.ndarray, ref: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref > 0, err / ref, np.nan)


def bootstrap_delta(err_run: np.ndarray, ref_run: np.ndarray, err_ref: np.ndarray, ref_ref: np.ndarray,
                    n_boot: int = 1000, level: float = 0.95,
                    rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Interval of the run's rate minus the reference's, from per-speaker summed errors and
    reference lengths, resampling speakers with replacement; NaN for fewer than two speakers."""
    k = len(err_run)
    if k < 2:
        return float("nan"), float("nan")
    rng = rng or np.random.default_rng(0)
    idx = rng.integers(0, k, size=(n_boot, k))
    deltas = _rate(err_run[idx].sum(1), ref_run[idx].sum(1)) - _rate(err_ref[idx].sum(1), ref_ref[idx].sum(1))
    deltas = deltas[np.isfinite(deltas)]
    if not len(deltas):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(deltas, [tail, 100 - tail])
    return float(lo), float(hi)


def _bucket_seed(seed: int, dimension: str, label: str, metric: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{dimension}/{label}/{metric}".encode())])


def compare(run: Analysis, reference: Analysis, name: str = "run", reference_name: str = "reference",
            dimensions: Sequence[str] = COMPARE_DIMENSIONS, edges: dict | None = None,
            metrics: Sequence[str] = ("per",), n_boot: int = 1000, level: float = 0.95,
            seed: int = 0) -> Comparison:
    """Deltas (run minus reference) overall and per bucket (the run's metadata), on the utterances both hold."""
    pos_ref = {r.id: i for i, r in enumerate(reference.rows)}
    i_run = np.array([i for i, r in enumerate(run.rows) if r.id in pos_ref], dtype=np.int64)
    if not len(i_run):
        raise KidconsoleError(f"{name} and {reference_name} share no utterance id: nothing to compare")
    i_ref = np.array([pos_ref[run.rows[i].id] for i in i_run], dtype=np.int64)
    rows = [run.rows[i] for i in i_run]
    spk = assign(rows, "speaker").codes.copy()
    anonymous = np.array([r.speaker is None for r in rows], dtype=bool)
    if anonymous.any():  # no speaker given: each such utterance is its own resampling unit
        spk[anonymous] = spk.max() + 1 + np.arange(int(anonymous.sum()))
    groups = [("all", "all", np.arange(len(i_run)))]
    for dim in dimensions:
        bk = assign(rows, dim, edges)
        groups += [(dim, label, bk.members(j)) for j, label in enumerate(bk.labels)]
    deltas = []
    for metric in metrics:
        m = METRICS.index(metric)
        c_run, c_ref = run.counts[i_run, m], reference.counts[i_ref, m]
        err_run, len_run = c_run[:, S] + c_run[:, D] + c_run[:, I], c_run[:, H] + c_run[:, S] + c_run[:, D]
        err_ref, len_ref = c_ref[:, S] + c_ref[:, D] + c_ref[:, I], c_ref[:, H] + c_ref[:, S] + c_ref[:, D]
        for dim, label, members in groups:
            if label == UNKNOWN and not len(members):
                continue
            # per-speaker sums within the bucket
            _, sp = np.unique(spk[members], return_inverse=True)
            k = int(sp.max()) + 1 if len(sp) else 0
            sums = [np.bincount(sp, weights=x[members], minlength=k) for x in (err_run, len_run, err_ref, len_ref)]
            r_run = _rate(sums[0].sum(), sums[1].sum()) if k else np.nan
            r_ref = _rate(sums[2].sum(), sums[3].sum()) if k else np.nan
            lo, hi = bootstrap_delta(*sums, n_boot=n_boot, level=level,
                                     rng=_bucket_seed(seed, dim, label, metric))
            deltas.append(Delta(dim, label, metric, len(members), k, float(r_run), float(r_ref), lo, hi))
    return Comparison(name, reference_name, len(i_run), run.n - len(i_run), reference.n - len(i_run),
                      n_boot, level, seed, deltas)
