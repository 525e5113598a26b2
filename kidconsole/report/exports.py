"""The exports of a run (``RUN/exports/<kind>/export.json``) and their table: size on disk, real-time
factor on the CPU (batch 1 and batched), PER and ΔPER against the PyTorch fp32 model (Δ = export −
fp32, negative is better) and the phones that lost most. Light: the console and the CLI read these.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.table import Table

from kidconsole import rundir
from kidconsole.bounded import read_capped
from kidconsole.shown import text

ORDER = ("torch-fp32", "onnx-fp32", "onnx-int8")  # the reference first
COLUMNS = ("kind", "size", "size vs fp32", "RTF batch 1", "RTF batched", "speed-up batch 1", "PER",
           "ΔPER [95% CI]", "max |Δlogit|", "phones ΔPER, worst 5")


def write_record(folder: str | Path, record: dict) -> Path:
    path = Path(folder) / rundir.EXPORT_RECORD
    rundir.atomic_write_text(path, json.dumps(record, ensure_ascii=False, indent=1, default=str))
    return path


def read_exports(run: str | Path) -> list[dict]:
    """The export records of a run, the reference first; an unreadable record is left out."""
    out = []
    root = Path(run) / rundir.EXPORTS
    for path in sorted(root.glob(f"*/{rundir.EXPORT_RECORD}")):
        try:
            rec = json.loads(read_capped(path, 1 << 20))
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and "kind" in rec:
            out.append(rec)
    return sorted(out, key=lambda r: (ORDER.index(r["kind"]) if r["kind"] in ORDER else len(ORDER), r["kind"]))


def _pct(x, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def rtf(x: float | None) -> str:
    """A real-time factor with three significant digits down to 0.0001."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.3f}" if x >= 0.1 else f"{x:.4f}" if x >= 0.001 else f"{x:.2e}"


def row(rec: dict) -> list[str]:
    """One kind's cells, in COLUMNS order."""
    ci = rec.get("delta_per_ci")
    delta = "0 (reference)" if rec["kind"] == ORDER[0] else (
        _pct(rec.get("delta_per"), True) + (f" [{_pct(ci[0], True)}, {_pct(ci[1], True)}]" if ci else "")
        + ("*" if rec.get("significant") else ""))
    phones = ", ".join(f"{p['phone']} {_pct(p['delta'], True)}" for p in rec.get("worst_phones") or []) or "—"
    diff = rec.get("max_logit_diff")
    return [rec["kind"], _size(rec.get("size_bytes")), f"{100 * rec.get('size_vs_fp32', float('nan')):.0f}%",
            rtf(rec.get("rtf_batch1")), rtf(rec.get("rtf_batched")),
            f"{rec.get('speedup_batch1', float('nan')):.2f}x", _pct(rec.get("per")), delta,
            "—" if rec["kind"] == ORDER[0] or diff is None else f"{diff:.2e}", phones]


def _caption(records: list[dict]) -> str:
    r = records[0] if records else {}
    return (f"CPU: {r.get('cpu', '?')}, {r.get('threads', '?')} threads; RTF = compute seconds / audio seconds "
            f"over {r.get('speed_audio_seconds', '?')} s of test audio (median round); PER on "
            f"{r.get('n', '?')} test utterances; Δ = export − torch-fp32 (negative is better), 95% "
            f"speaker-bootstrap interval, * significant; phones ΔPER in points")


def exports_table(records: list[dict], title: str = "") -> Table:
    t = Table(title=text(f"exports of {title}" if title else "exports"), title_justify="left",
              caption=text(_caption(records)), caption_justify="left")
    for c in COLUMNS:
        t.add_column(c, justify="left" if c in ("kind", "phones ΔPER, worst 5") else "right")
    for rec in records:
        t.add_row(*map(text, row(rec)))
    return t


def _md(cells) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def exports_markdown(records: list[dict], title: str = "") -> str:
    lines = [f"# Exports of {title}" if title else "# Exports", "", _md(COLUMNS),
             "|" + "|".join("---" if c in ("kind", COLUMNS[-1]) else "---:" for c in COLUMNS) + "|"]
    lines += [_md(row(rec)) for rec in records]
    return "\n".join(lines + ["", _caption(records), ""])
