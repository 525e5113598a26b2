"""A report as Rich tables (terminal), Markdown, CSV or JSON.

Rates are fractions in the data and percentages on screen and in Markdown;
JSON and CSV keep fractions. CSV holds the per-bucket table (one row per
bucket, the comparison's columns added when there is one); JSON holds all.
Deltas are the run minus the reference (negative is better); buckets of
fewer than ``MIN_SPEAKERS`` speakers are marked low-confidence, and a bucket
of one speaker has no interval.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kidconsole.palette import OP_STYLES, WARNING
from kidconsole.report.buckets import TITLES
from kidconsole.report.compare import Delta
from kidconsole.report.compute import D, I, METRICS, MIN_SPEAKERS, S, BucketStats, rates
from kidconsole.report.phonemes import EPS
from kidconsole.report.summary import WORST_DIMENSIONS, Report, aligned, position_sides, weakest_sides
from kidconsole.shown import text, visible

FORMATS = ("md", "csv", "json")
OP_MARKS = {"equal": " ", "substitute": "S", "delete": "D", "insert": "I"}
SHORT = {"age": "age", "age_group": "ages", "snr": "SNR", "duration": "dur", "gender": "gender"}
MAX_SPEAKERS = 15  # speakers shown on the terminal and in Markdown (worst first); CSV/JSON hold all


def pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def signed_pct(x: float, digits: int = 2) -> str:
    return "—" if math.isnan(x) else f"{100 * x:+.{digits}f}"


def interval_text(d: Delta, digits: int = 2) -> str:
    """A delta's interval in points: ``-3.10..-0.52``; ``n/a (1 speaker)`` where none can be had."""
    if not d.n:
        return "—"
    if d.speakers < 2:
        return f"n/a ({d.speakers} speaker)"
    if math.isnan(d.lo):
        return "—"
    return f"{signed_pct(d.lo, digits)}..{signed_pct(d.hi, digits)}"


def speakers_text(n: int, low: bool) -> str:
    """A speaker count, marked ``low`` under ``MIN_SPEAKERS`` (low confidence)."""
    return f"{n} low" if low else str(n)


LOW_NOTE = f"low: fewer than {MIN_SPEAKERS} speakers; low confidence (one child can move a rate by points)."


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def _metrics(rep: Report) -> tuple[str, ...]:
    return METRICS if rep.analysis.has_cer else ("per", "wer")


# ---- aligned decodes ---------------------------------------------------------------------------

def alignment_columns(pairs: Iterable[tuple[str, str | None, str | None]]) -> tuple[str, str, str]:
    """Three aligned lines: reference, hypothesis, and the S/D/I marks."""
    ref, hyp, ops = [], [], []
    for op, r, h in pairs:
        r, h = r or "*", h or "*"
        w = max(len(r), len(h))
        ref.append(r.ljust(w))
        hyp.append(h.ljust(w))
        ops.append(OP_MARKS[op].ljust(w))
    return " ".join(ref), " ".join(hyp), " ".join(ops).rstrip()


def alignment_text(pairs: Iterable[tuple[str, str | None, str | None]]) -> Text:
    """Reference over hypothesis, errors coloured (substitution, deletion, insertion)."""
    ref, hyp = Text("REF "), Text("HYP ")
    for op, r, h in pairs:
        r, h = visible(r or "*"), visible(h or "*")
        w = max(len(r), len(h))
        ref.append(r.ljust(w) + " ", OP_STYLES[op])
        hyp.append(h.ljust(w) + " ", OP_STYLES[op])
    return Text("\n").join([ref, hyp])


# ---- flat rows (CSV, JSON) ---------------------------------------------------------------------

def _bucket_row(rep: Report, b: BucketStats) -> dict:
    row = {"dimension": b.dimension, "bucket": b.label, "utterances": b.n, "speakers": b.speakers,
           "low_confidence": b.low_confidence}
    for m in _metrics(rep):
        row[m] = _num(b.rate(m))
    row |= {"sub_rate": _num(b.op_rate(S)), "del_rate": _num(b.op_rate(D)), "ins_rate": _num(b.op_rate(I)),
            "phones": b.n_ref(), "substitutions": int(b.counts[0, S]), "deletions": int(b.counts[0, D]),
            "insertions": int(b.counts[0, I])}
    if rep.comparison:
        for d in rep.comparison.deltas:
            if d.dimension == b.dimension and d.label == b.label:
                row |= {f"{d.metric}_reference": _num(d.reference), f"{d.metric}_delta": _num(d.delta),
                        f"{d.metric}_ci_lo": _num(d.lo), f"{d.metric}_ci_hi": _num(d.hi),
                        f"{d.metric}_significant": d.significant}
    return row


def bucket_rows(rep: Report) -> list[dict]:
    rows = [_bucket_row(rep, rep.overall)]
    for bs in rep.dimensions.values():
        rows += [_bucket_row(rep, b) for b in bs]
    return rows


def _utterance(rep: Report, i: int) -> dict:
    r = rep.analysis.rows[i]
    ref, hyp, ops = alignment_columns(aligned(rep.analysis, i))
    c = rep.analysis.counts[i, 0]
    return {"id": r.id, "speaker": r.speaker, "age": r.age_years, "snr": r.snr, "duration": r.duration,
            "per": _num(float(rates(rep.analysis.counts[i, 0]))), "substitutions": int(c[S]),
            "deletions": int(c[D]), "insertions": int(c[I]), "ref": r.ref, "hyp": r.hyp,
            "aligned": {"ref": ref, "hyp": hyp, "ops": ops}}


def _phones(rep: Report) -> list[dict]:
    return [{"phone": p.phone, "count": p.count, "error_rate": _num(p.error_rate), "substituted": p.substituted,
             "deleted": p.deleted, "inserted": p.inserted} for p in rep.phones]


def _positions(rep: Report) -> list[dict]:
    return [{"position": p.position, "count": p.count, "error_rate": _num(p.error_rate),
             "deletion_rate": _num(p.deletion_rate), "substituted": p.substituted, "deleted": p.deleted}
            for p in rep.positions]


def to_dict(rep: Report) -> dict:
    out = {
        "name": rep.name, "path": str(rep.path), "utterances": rep.n, "skipped": rep.skipped,
        "min_speakers": MIN_SPEAKERS,
        "overall": _bucket_row(rep, rep.overall),
        "macro_age_group": {m: _num(rep.macro[m]) for m in _metrics(rep)},
        "buckets": {d: [_bucket_row(rep, b) for b in bs] for d, bs in rep.dimensions.items()},
        "phones": _phones(rep),
        "weakest": [p.phone for p in rep.weakest],
        "confusions": [{"ref": r, "hyp": h, "count": n, "share": _num(s)} for r, h, n, s in rep.confusion.pairs(50)],
        "confusion_matrix": {"labels": rep.confusion.labels, "counts": rep.confusion.matrix.tolist()},
        "positions": _positions(rep),
        "worst": [{"dimension": d, "bucket": b, "utterances": [_utterance(rep, i) for i in idx]}
                  for (d, b), idx in rep.worst.items()],
    }
    if rep.comparison:
        c, ref = rep.comparison, rep.reference
        out["comparison"] = {
            "run": c.name, "reference": c.reference, "delta": "run - reference",
            "common": c.n_common, "only_run": c.only_run, "only_reference": c.only_reference,
            "bootstrap": c.n_boot, "level": c.level, "seed": c.seed,
            "deltas": [{"dimension": d.dimension, "bucket": d.label, "metric": d.metric, "utterances": d.n,
                        "speakers": d.speakers, "low_confidence": d.low_confidence, "run": _num(d.rate),
                        "reference": _num(d.reference), "delta": _num(d.delta), "ci_lo": _num(d.lo),
                        "ci_hi": _num(d.hi), "significant": d.significant} for d in c.deltas],
        }
        if ref is not None:
            out["comparison"] |= {"reference_path": str(ref.path), "reference_phones": _phones(ref),
                                  "reference_weakest": [p.phone for p in ref.weakest],
                                  "reference_positions": _positions(ref)}
    return out


def to_json(rep: Report) -> str:
    return json.dumps(to_dict(rep), ensure_ascii=False, indent=1)


def to_csv(rep: Report) -> str:
    rows = bucket_rows(rep)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


# ---- tables (shared by Markdown and Rich) ----------------------------------------------------

def _tables(rep: Report, max_speakers: int = MAX_SPEAKERS) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, as strings."""
    ms = _metrics(rep)
    head = ["bucket", "utts", "spk"] + [m.upper() for m in ms] + ["sub%", "del%", "ins%"]
    ref = rep.reference.name if rep.reference else None

    def row(b: BucketStats) -> list[str]:
        return [b.label, str(b.n), speakers_text(b.speakers, b.low_confidence)] + [pct(b.rate(m)) for m in ms] + \
            [pct(b.op_rate(op)) for op in (S, D, I)]

    tables = [(f"{rep.name}: {rep.n} utterances", head,
               [row(rep.overall), ["macro (age groups)", "", ""] + [pct(rep.macro[m]) for m in ms] + ["", "", ""]])]
    for d, bs in rep.dimensions.items():
        title = TITLES[d]
        if d == "speaker":
            bs = sorted(bs, key=lambda b: -b.rate())[:max_speakers]
            title = f"Speakers (worst {len(bs)} of {len(rep.dimensions[d])})"
        tables.append((title, head, [row(b) for b in bs]))
    weak = {p: r for p, _, r in weakest_sides(rep, len(rep.weakest))}
    tables.append(("Weakest phones", ["phone", "count", f"err% {rep.name}", "sub", "del", "ins"]
                   + ([f"err% {ref}"] if ref else []),
                   [[p.phone, str(p.count), pct(p.error_rate), str(p.substituted), str(p.deleted), str(p.inserted)]
                    + ([pct(weak[p.phone])] if ref else []) for p in rep.weakest]))
    tables.append(("Top confusions", ["ref", "hyp", "count", "% of ref"],
                   [[r, h, str(n), pct(s)] for r, h, n, s in rep.confusion.pairs(15)]))
    tables.append(("Errors by position in word",
                   ["position", "phones", f"err% {rep.name}", f"del% {rep.name}", "sub", "del"]
                   + ([f"err% {ref}", f"del% {ref}"] if ref else []),
                   [[p.position, str(p.count), pct(p.error_rate), pct(p.deletion_rate), str(p.substituted),
                     str(p.deleted)] + ([pct(q and q.error_rate), pct(q and q.deletion_rate)] if ref else [])
                    for p, q in position_sides(rep)]))
    if rep.comparison:
        c = rep.comparison
        lvl = f"{100 * c.level:g}%"
        tables.append((f"{c.name} vs {c.reference}: delta = {c.name} - {c.reference}, negative is better "
                       f"({c.n_common} common utterances; {lvl} CI, {c.n_boot} speaker resamples)",
                       ["bucket", "metric", "utts", "spk", c.name, c.reference, "delta", f"{lvl} CI", ""],
                       [["all" if d.dimension == "all" else f"{SHORT.get(d.dimension, d.dimension)} {d.label}",
                         d.metric.upper(), str(d.n), speakers_text(d.speakers, d.low_confidence),
                         pct(d.rate), pct(d.reference), signed_pct(d.delta), interval_text(d),
                         "*" if d.significant else ""]
                        for d in c.deltas if d.n]))
    return tables


def _has_low(rep: Report) -> bool:
    return any(b.low_confidence for bs in rep.dimensions.values() for b in bs)


def _worst_groups(rep: Report) -> list[tuple[str, list[int]]]:
    return [("All utterances" if d == "all" else f"{TITLES[d]} {b}", idx) for (d, b), idx in rep.worst.items()
            if d == "all" or d in WORST_DIMENSIONS]


def to_markdown(rep: Report, max_speakers: int = MAX_SPEAKERS) -> str:
    out = [f"# Error report: {rep.name}", "", f"Predictions: `{rep.path}`; {rep.n} utterances"
           + (f", {len(rep.skipped)} lines skipped" if rep.skipped else "") + ". Rates in %.", ""]
    for title, head, rows in _tables(rep, max_speakers):
        out += [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        out.append("")
    if _has_low(rep):
        out += [LOW_NOTE, ""]
    out += ["## Worst utterances", ""]
    for title, idx in _worst_groups(rep):
        out += [f"### {title}", ""]
        for i in idx:
            u = _utterance(rep, i)
            out += [f"`{u['id']}` (speaker {u['speaker']}): PER {pct(u['per'])}, "
                    f"S {u['substitutions']} D {u['deletions']} I {u['insertions']}", "", "```",
                    "REF " + u["aligned"]["ref"], "HYP " + u["aligned"]["hyp"], "    " + u["aligned"]["ops"], "```", ""]
    if rep.skipped:
        out += ["## Skipped lines", ""] + [f"- {s}" for s in rep.skipped[:50]] + [""]
    return "\n".join(out)


def render(rep: Report, fmt: str) -> str:
    return {"md": to_markdown, "csv": to_csv, "json": to_json}[fmt](rep)


def print_report(rep: Report, console: Console | None = None, worst_k: int = 3) -> None:
    """The report as Rich tables, with the worst utterances' aligned decodes."""
    console = console or Console()
    for title, head, rows in _tables(rep):
        t = Table(title=text(title), title_justify="left", header_style="bold")  # names and labels from disk
        for j, h in enumerate(head):
            t.add_column(text(h), justify="left" if j == 0 or h in ("bucket", "ref", "hyp", "dimension") else "right")
        for r in rows:
            t.add_row(*map(text, r))
        console.print(t)
    if _has_low(rep):
        console.print(Text(LOW_NOTE, style=WARNING))
    console.print(Text("Worst utterances", style="bold"))
    for i in rep.worst[("all", "all")][:worst_k]:
        r = rep.analysis.rows[i]
        console.print(text(f"{r.id} (speaker {r.speaker}) PER {pct(float(rates(rep.analysis.counts[i, 0])))}"))
        console.print(alignment_text(aligned(rep.analysis, i)))
    if rep.skipped:
        console.print(text(f"{len(rep.skipped)} malformed lines skipped, first: {rep.skipped[0]}", WARNING))
    if rep.confusion.labels == [EPS]:
        console.print(Text("no phones in the references", style=WARNING))
