"""The canonical manifest: JSONL, one utterance a line (schema in docs/manifest.md).

The corpus index writes it; the subset builder, the trainer and the reports
read only this.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Iterable, Iterator

from kidconsole.errors import KidconsoleError

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

    def to_json(self) -> str:
        # a shallow field dict: asdict's deep copy is the slowest step of writing a large manifest
        return json.dumps({name: getattr(self, name) for name in _FIELD_ORDER},
                          ensure_ascii=False, separators=(",", ":"))

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


def read_manifest(path: str | Path) -> Iterator[Utterance]:
    """Rows of a manifest; a malformed line is an error naming file and line."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8")
    except OSError as e:
        raise KidconsoleError(f"cannot open manifest {path}: {e.strerror}") from e
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise KidconsoleError(f"{path}:{lineno}: not JSON ({e.msg})") from e
            if not isinstance(d, dict):
                raise KidconsoleError(f"{path}:{lineno}: a manifest row must be a JSON object")
            yield from_dict(d, f"{path}:{lineno}")


def write_manifest(path: str | Path, rows: Iterable[Utterance]) -> int:
    """Write rows atomically (temp file, then rename); returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(row.to_json() + "\n")
            n += 1
    tmp.replace(path)
    return n


def split_location(location: str) -> tuple[str, str | None]:
    """``"a.zip::x/y.wav"`` -> ``("a.zip", "x/y.wav")``; a plain path -> ``(path, None)``."""
    if ZIP_SEP in location:
        archive, member = location.split(ZIP_SEP, 1)
        return archive, member
    return location, None
