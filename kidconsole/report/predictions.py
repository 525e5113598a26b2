"""Per-utterance predictions: the JSONL the reports read.

One JSON object a line: ``id``, ``ref``, ``hyp`` (phones, space-separated,
``|`` between words) are required; ``speaker``, ``age``, ``age_range``,
``gender``, ``snr``, ``duration``, ``split`` are metadata and may be missing
or null. The trainer writes ``predictions.jsonl`` in the run directory
(docs/run-directory.md); any JSONL with these keys works too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from kidconsole.errors import KidconsoleError
from kidconsole.jsonl import read_jsonl
from kidconsole.rundir import PREDICTIONS, read_status
from kidconsole.rundir import PredictionRow as Prediction  # one row of predictions.jsonl, the contract's record


@dataclass
class PredictionSet:
    """The predictions of one source, with the lines that were skipped."""
    name: str
    path: Path
    rows: list[Prediction]
    skipped: list[str] = field(default_factory=list)  # "file:line: reason", one per skipped line


def _number(d: dict, key: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError(f"{key} must be a number, not {v!r}")
    if isinstance(v, str):
        v = v.strip()
        if v.upper() in ("", "N/A", "NA", "NULL", "NONE"):
            return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, not {v!r}") from None
    return x if math.isfinite(x) else None


def _text(d: dict, key: str, required: bool = False) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise ValueError(f"lacks {key}")
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and key in ("id", "speaker"):
        return str(v)
    if not isinstance(v, str):
        raise ValueError(f"{key} must be a string, not {type(v).__name__}")
    return v


def _flag(d: dict, key: str) -> bool | None:
    v = d.get(key)
    if v is not None and not isinstance(v, bool):
        raise ValueError(f"{key} must be true, false or null, not {v!r}")
    return v


def parse_prediction(d: object) -> Prediction:
    """One row from its decoded JSON; ``ValueError`` names the bad key."""
    if not isinstance(d, dict):
        raise ValueError("a prediction must be a JSON object")
    rng = d.get("age_range")
    if rng is not None:
        if not (isinstance(rng, (list, tuple)) and len(rng) == 2):
            raise ValueError(f"age_range must be [lo, hi], not {rng!r}")
        lo, hi = _number({"age_range": rng[0]}, "age_range"), _number({"age_range": rng[1]}, "age_range")
        rng = (lo, hi) if lo is not None and hi is not None else None
    return Prediction(
        id=_text(d, "id", required=True),
        ref=_text(d, "ref", required=True),
        hyp=_text(d, "hyp", required=True),
        speaker=_text(d, "speaker"),
        age=_number(d, "age"),
        age_range=rng,
        gender=_text(d, "gender"),
        snr=_number(d, "snr"),
        duration=_number(d, "duration"),
        split=_text(d, "split"),
        pseudo_speaker=_flag(d, "pseudo_speaker"),
    )


def predictions_path(source: str | Path) -> Path:
    """The predictions file of a run directory, or the file itself."""
    source = Path(source)
    if source.is_dir():
        path = source / PREDICTIONS
        if not path.is_file():
            raise KidconsoleError(f"{source}: no {PREDICTIONS} (has the run finished its test evaluation?)")
        return path
    if not source.exists():
        raise KidconsoleError(f"{source}: no such run directory or predictions file")
    return source


def run_name(source: str | Path) -> str:
    """The run's name from its status.json, else the directory or file name."""
    source = Path(source)
    if source.is_dir():
        return read_status(source).get("name") or source.resolve().name
    return source.stem


def read_predictions(source: str | Path, strict: bool = False) -> PredictionSet:
    """Read a run directory's ``predictions.jsonl`` or a predictions JSONL.

    A malformed line is skipped and recorded as ``file:line: reason``, so one
    bad line does not lose a 100,000-utterance test set; ``strict`` raises on
    the first instead. Duplicate ids are skipped the same way.
    """
    path = predictions_path(source)
    rows: list[Prediction] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for lineno, d, bad in read_jsonl(path, "predictions"):
        try:
            if bad is not None:
                raise ValueError(bad)
            row = parse_prediction(d)
            if row.id in seen:
                raise ValueError(f"duplicate id {row.id!r}")
        except ValueError as e:
            msg = f"{path}:{lineno}: {e}"
            if strict:
                raise KidconsoleError(msg) from None
            skipped.append(msg)
            continue
        seen.add(row.id)
        rows.append(row)
    return PredictionSet(run_name(source), path, rows, skipped)
