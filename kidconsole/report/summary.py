"""A whole error report: overall and per-bucket rates, phone figures, the
worst utterances, and optionally a comparison with a second run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kidconsole.metrics import align, phone_tokens
from kidconsole.report.buckets import DIMENSIONS
from kidconsole.report.compare import Comparison, compare
from kidconsole.report.compute import METRICS, Analysis, BucketStats, analyse, bucket_stats, macro_rate, \
    overall_stats, worst
from kidconsole.report.phonemes import Confusion, PhoneStats, PositionStats, confusion, phone_stats, \
    position_stats, weakest
from kidconsole.report.predictions import PredictionSet, read_predictions

# Worst utterances are listed for these (one list per speaker would swamp the report).
WORST_DIMENSIONS = ("age_group", "snr", "duration", "gender")


@dataclass
class Report:
    name: str
    path: Path
    analysis: Analysis
    skipped: list[str]
    overall: BucketStats
    macro: dict[str, float]                   # metric -> mean over age groups
    dimensions: dict[str, list[BucketStats]]
    phones: list[PhoneStats]
    weakest: list[PhoneStats]
    confusion: Confusion
    positions: list[PositionStats]
    worst: dict[tuple[str, str], list[int]]   # (dimension, bucket) -> utterance indices, worst first
    comparison: Comparison | None = None
    edges: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.analysis.n


def aligned(a: Analysis, i: int) -> list[tuple[str, str | None, str | None]]:
    """The phone alignment of utterance ``i``: ``(op, ref, hyp)`` as ``metrics.align``."""
    r = a.rows[i]
    return align(phone_tokens(r.ref), phone_tokens(r.hyp))


def build_report(preds: PredictionSet, edges: dict | None = None, worst_k: int = 5,
                 weakest_k: int = 10, min_count: int = 20) -> Report:
    a = analyse(preds)
    dims = {d: bucket_stats(a, d, edges) for d in DIMENSIONS}
    overall = overall_stats(a)
    worst_lists = {("all", "all"): worst(a, overall.members, worst_k).tolist()}
    for d in WORST_DIMENSIONS:
        for b in dims[d]:
            if b.n:
                worst_lists[(d, b.label)] = worst(a, b.members, worst_k).tolist()
    phones = phone_stats(a)
    return Report(
        name=preds.name, path=preds.path, analysis=a, skipped=preds.skipped, overall=overall,
        macro={m: macro_rate(dims["age_group"], m) for m in METRICS},
        dimensions=dims, phones=phones, weakest=weakest(phones, weakest_k, min_count),
        confusion=confusion(a), positions=position_stats(a), worst=worst_lists, edges=dict(edges or {}),
    )


def report_for(source: str | Path, vs: str | Path | None = None, edges: dict | None = None,
               n_boot: int = 1000, seed: int = 0, **kw) -> Report:
    """The report of a run directory or predictions file, compared with ``vs`` when given
    (deltas are ``vs`` minus ``source``)."""
    rep = build_report(read_predictions(source), edges, **kw)
    if vs is not None:
        other = read_predictions(vs)
        rep.comparison = compare(rep.analysis, analyse(other), rep.name, other.name, edges=edges,
                                 metrics=[m for m in METRICS if m != "cer" or rep.analysis.has_cer],
                                 n_boot=n_boot, seed=seed)
        rep.skipped = rep.skipped + other.skipped
    return rep

