"""The manifest as columns: only the fields the subset builder needs.

A corpus manifest has ~2 M rows; building an ``Utterance`` per row would cost
minutes and gigabytes. Instead each line is parsed once, a few fields are kept
in numpy arrays, and the line's byte offset and length are kept so the output
manifests copy the original lines verbatim.
"""

from __future__ import annotations

import json
import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kidconsole.errors import KidconsoleError

SPLITS = ("train", "validation", "test")
_SPLIT_CODE = {"train": 0, "training": 0, "validation": 1, "valid": 1, "val": 1, "dev": 1, "test": 2}
MAX_EXAMPLES = 10  # skipped rows quoted in the report


@dataclass
class Table:
    path: Path
    offset: np.ndarray      # int64: byte offset of the line
    length: np.ndarray      # int32: byte length of the line, newline included
    duration: np.ndarray    # float64 seconds
    speaker: np.ndarray     # int32 index into ``speakers``
    split: np.ndarray       # int8 index into SPLITS
    age: np.ndarray         # float32 years (the age, else the middle of age_range); NaN unknown
    snr: np.ndarray         # float32 dB; NaN unknown
    speakers: list[str]
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.duration)


def _number(v) -> float:
    """A finite float from a number or numeric string, else NaN."""
    if v is None or isinstance(v, bool):
        return math.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def _age(d: dict) -> float:
    # same rule as Utterance.age_years: the exact age, else the middle of the range
    age = _number(d.get("age"))
    if math.isnan(age):
        rng = d.get("age_range")
        if isinstance(rng, (list, tuple)) and len(rng) == 2:
            age = (_number(rng[0]) + _number(rng[1])) / 2
    return age


def load_table(path: str | Path, *, on_progress: Callable[[float], None] | None = None) -> Table:
    """Parse a manifest into columns; malformed rows are skipped and counted.

    ``on_progress(fraction_of_bytes_read)`` is called now and then.
    """
    path = Path(path)
    try:
        fh = path.open("rb")
        size = path.stat().st_size
    except OSError as e:
        raise KidconsoleError(f"cannot open manifest {path}: {e.strerror}") from e
    # array.array holds raw numbers: a tenth of the memory of lists of floats
    offsets, lengths, durations = array("q"), array("i"), array("d")
    speakers_col, splits, ages, snrs = array("i"), array("b"), array("f"), array("f")
    speaker_ids: dict[str, int] = {}
    skipped, examples = 0, []
    loads, number, age_of, split_code = json.loads, _number, _age, _SPLIT_CODE.get
    offset = 0

    def skip(lineno: int, why: str) -> None:
        nonlocal skipped
        skipped += 1
        if len(examples) < MAX_EXAMPLES:
            examples.append(f"{path}:{lineno}: {why}")

    with fh:
        for lineno, line in enumerate(fh, 1):
            n = len(line)
            start, offset = offset, offset + n
            if on_progress is not None and lineno % 100_000 == 0:
                on_progress(offset / size)
            if not line.strip():
                continue
            try:
                d = loads(line)
                spk, split, dur = d["speaker"], d["split"], number(d["duration"])
            except (ValueError, UnicodeDecodeError):
                skip(lineno, "not JSON")
                continue
            except (KeyError, TypeError) as e:
                skip(lineno, f"lacks {e}" if isinstance(e, KeyError) else "not a JSON object")
                continue
            code = split_code(split) if isinstance(split, str) else None
            if code is None:
                skip(lineno, f"split {split!r} is not train, validation or test")
                continue
            if not dur > 0:
                skip(lineno, f"duration {d['duration']!r} is not a positive number")
                continue
            if not isinstance(spk, (str, int)) or spk == "":
                skip(lineno, "speaker is empty")
                continue
            offsets.append(start)
            lengths.append(n)
            durations.append(dur)
            speakers_col.append(speaker_ids.setdefault(str(spk), len(speaker_ids)))
            splits.append(code)
            ages.append(age_of(d))
            snrs.append(number(d.get("snr")))
    if on_progress is not None:
        on_progress(1.0)
    return Table(
        path=path,
        offset=np.frombuffer(offsets, dtype=np.int64).copy(),
        length=np.frombuffer(lengths, dtype=np.int32).copy(),
        duration=np.frombuffer(durations, dtype=np.float64).copy(),
        speaker=np.frombuffer(speakers_col, dtype=np.int32).copy(),
        split=np.frombuffer(splits, dtype=np.int8).copy(),
        age=np.frombuffer(ages, dtype=np.float32).copy(),
        snr=np.frombuffer(snrs, dtype=np.float32).copy(),
        speakers=list(speaker_ids),
        skipped=skipped,
        skipped_examples=examples,
    )
