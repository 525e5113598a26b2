"""The canonical manifest: JSONL, one utterance a line (schema in docs/manifest.md).

The corpus index writes it; the subset builder, the trainer and the reports
read only this.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Iterable, Iterator

from kidconsole.errors import KidconsoleError
from kidconsole.jsonl import read_jsonl
from kidconsole.rundir import atomic_writer

ZIP_SEP = "::"  # "archive.zip::member/path.wav" locates a WAV inside a zip archive


@dataclass
class Utterance:
    id: str                       # unique within the corpus
    audio: str                    # file path, or "archive.zip::member" (see ZIP_SEP)
    duration: float               # seconds
    sample_rate: int
    speaker: str                  # hashed Basic.NumberOfSpeaker, never the SpeakerName
    split: str                    # source split: "train", "validation" or "test"
    text: str                     # transcript as labelled
    phones: str                   # space-separated phones, "|" between words
    channels: int = 1
    age: float | None = None      # years, when the label gives a number
    age_range: list[float] | None = None  # [lo, hi] when the label gives a range ("10~19")
    gender: str | None = None     # "M", "F" or None
    snr: float | None = None      # dB
    snr_estimated: bool = False   # True when snr was estimated from the audio (WADA-SNR)
    quality: str | None = None    # Other.QualityStatus
    label: str | None = None      # where the label came from (path or "zip::member")
    extra: dict = field(default_factory=dict)
    pseudo: bool = False          # the phones are a model's decode (kidconsole pseudo), not a label's
    confidence: float | None = None  # that decode's mean CTC confidence

    def to_json(self) -> str:
        # a shallow field dict: asdict's deep copy is the slowest step of writing a large manifest
        d = {name: getattr(self, name) for name in _FIELD_ORDER}
        for name, default in _WRITTEN_WHEN_SET.items():  # a labelled corpus's rows stay as they were
            if d[name] == default:
                del d[name]
        return json.dumps(d, ensure_ascii=False, separators=(",", ":"))

    @property
    def age_years(self) -> float | None:
        """The age for bucketing: the exact age, else the middle of the range."""
        if self.age is not None:
            return self.age
        if self.age_range:
            return (self.age_range[0] + self.age_range[1]) / 2
        return None


_FIELD_ORDER = tuple(f.name for f in fields(Utterance))
_FIELDS = set(_FIELD_ORDER)
_WRITTEN_WHEN_SET = {"pseudo": False, "confidence": None}
_REQUIRED = {f.name for f in fields(Utterance) if f.default is MISSING and f.default_factory is MISSING}


def from_dict(d: dict, where: str = "") -> Utterance:
    missing = _REQUIRED - d.keys()
    if missing:
        raise KidconsoleError(f"{where}: manifest row lacks {', '.join(sorted(missing))}")
    unknown = d.keys() - _FIELDS
    row = {k: v for k, v in d.items() if k in _FIELDS}
    if unknown:  # keep what we do not know rather than losing it
        row["extra"] = {**d.get("extra", {}), **{k: d[k] for k in unknown}}
    return Utterance(**row)


def numbered_rows(path: str | Path) -> Iterator[tuple[int, Utterance]]:
    """(line number, row) of a manifest. A line that is not UTF-8, not JSON, not an object or lacks a
    required key is an error naming file and line: the file is not a manifest as written here."""
    for lineno, d, bad in read_jsonl(path, "manifest"):
        if bad is not None:
            hint = "; a manifest is UTF-8 JSON Lines" if bad.startswith("not UTF-8") else ""
            raise KidconsoleError(f"{path}:{lineno}: {bad}{hint}")
        if not isinstance(d, dict):
            raise KidconsoleError(f"{path}:{lineno}: a manifest row must be a JSON object")
        yield lineno, from_dict(d, f"{path}:{lineno}")


def read_manifest(path: str | Path) -> Iterator[Utterance]:
    """Rows of a manifest; a malformed line is an error naming file and line (see numbered_rows)."""
    for _, row in numbered_rows(path):
        yield row


def unusable(row: Utterance) -> str | None:
    """Why a row cannot be trained on or scored (a field of the wrong type or empty), or None. Such a row
    is well-formed JSON, so it is skipped and counted rather than failing its whole manifest."""
    for name in ("id", "audio", "phones"):
        value = getattr(row, name)
        if not isinstance(value, str) or not value.strip():
            return f"{name} is {json.dumps(value, ensure_ascii=False)[:40]}, not a non-empty string"
    d = row.duration
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d <= 0:
        return f"duration is {json.dumps(d, ensure_ascii=False)[:40]}, not a positive number of seconds"
    return None


def find_line(path: str | Path, row_id: str) -> int | None:
    """The line of ``path`` that holds the row ``row_id`` (for an error message: a scan of the file)."""
    needles = {json.dumps(row_id, ensure_ascii=a).encode("utf-8") for a in (False, True)}
    try:
        with Path(path).open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if any(n in raw for n in needles):
                    try:
                        if json.loads(raw).get("id") == row_id:
                            return lineno
                    except (ValueError, AttributeError):
                        continue
    except OSError:
        return None
    return None


def write_manifest(path: str | Path, rows: Iterable[Utterance]) -> int:
    """Write rows atomically (temp file, fsync, rename); returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with atomic_writer(path) as fh:
        for row in rows:
            fh.write(row.to_json() + "\n")
            n += 1
    return n


def split_location(location: str) -> tuple[str, str | None]:
    """``"a.zip::x/y.wav"`` -> ``("a.zip", "x/y.wav")``; a plain path -> ``(path, None)``."""
    if ZIP_SEP in location:
        archive, member = location.split(ZIP_SEP, 1)
        return archive, member
    return location, None
