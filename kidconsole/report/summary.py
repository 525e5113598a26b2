"""A whole error report: overall and per-bucket rates, phone figures, the
worst utterances, and optionally a comparison with a reference run (deltas
are the run minus the reference: negative is better)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from kidconsole.metrics import align, phone_tokens
from kidconsole.report.buckets import DIMENSIONS, PSEUDO
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
    reference: Report | None = None      # the report of what the run is compared against
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
    if any(r.pseudo_speaker for r in a.rows):
        dims[PSEUDO] = bucket_stats(a, PSEUDO, edges)
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
    """The report of a run directory or predictions file; with ``vs`` (a reference: a baseline or
    another run) its report too and the comparison (deltas are ``source`` minus ``vs``)."""
    rep = build_report(read_predictions(source), edges, **kw)
    if vs is not None:
        ref = build_report(read_predictions(vs), edges, **kw)
        rep.reference = ref
        rep.comparison = compare(rep.analysis, ref.analysis, rep.name, ref.name, edges=edges,
                                 metrics=[m for m in METRICS if m != "cer" or rep.analysis.has_cer],
                                 n_boot=n_boot, seed=seed)
        rep.skipped = rep.skipped + ref.skipped
    return rep


def weakest_sides(rep: Report, k: int = 8) -> list[tuple[str, float, float | None]]:
    """``(phone, run's error rate, reference's error rate)`` of the run's weakest phones
    (the reference's rate is None without a reference or when it never saw the phone)."""
    theirs = {p.phone: p.error_rate for p in rep.reference.phones} if rep.reference else {}
    return [(p.phone, p.error_rate, theirs.get(p.phone)) for p in rep.weakest[:k]]


def position_sides(rep: Report) -> list[tuple[PositionStats, PositionStats | None]]:
    """The run's errors by position in the word, beside the reference's."""
    theirs = {p.position: p for p in rep.reference.positions} if rep.reference else {}
    return [(p, theirs.get(p.position)) for p in rep.positions]


def scored_manifest(run_dir: str | Path) -> str | None:
    """The test manifest a run was scored on (``data.test_manifest`` of its config.yaml)."""
    from kidconsole.config import read_run_config

    cfg = read_run_config(run_dir)
    return cfg.data.test_manifest if cfg else None


def pick_reference(run: str | Path, candidates: Sequence[str | Path]) -> Path | None:
    """The first candidate, other than the run itself, scored on the run's test manifest
    (a comparison holds the utterances both scored)."""
    mine, me = scored_manifest(run), Path(run).resolve()
    for other in candidates:
        if Path(other).resolve() != me and scored_manifest(other) == mine:
            return Path(other)
    return None
