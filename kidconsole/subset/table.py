"""The manifest as columns: only the fields the subset builder needs.

A corpus manifest has ~2 M rows; building an ``Utterance`` per row would cost
minutes and gigabytes. The file is read in blocks; each line's byte offset and
length are kept so the output manifests copy the original lines verbatim.

Two ways to read a block, same result:
- fast: lines as ``Utterance.to_json`` writes them (compact, fields in
  dataclass order) yield their few fields to two regular expressions over the
  whole block, converted by numpy; no per-line Python.
- exact: ``json.loads`` per line, with bad rows skipped and counted. A block
  takes this way as soon as anything in it does not fit the fast way (another
  writer's layout, a blank or broken line, a value that needs a closer look).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kidconsole.errors import KidconsoleError

SPLITS = ("train", "validation", "test")
_SPLIT_CODE = {"train": 0, "training": 0, "validation": 1, "valid": 1, "val": 1, "dev": 1, "test": 2}
MAX_EXAMPLES = 10  # skipped rows quoted in the report
BLOCK_BYTES = 32 << 20

# Each pattern runs to the end of a line, so it matches a line at most once: as
# many matches as lines means one per line, in line order. Each starts with a
# literal key (fast to find); a quote inside a JSON string is escaped, so
# '"key":' only ever matches a key.
_HEAD = re.compile(rb'"duration": ?(-?[0-9][0-9.eE+-]*)[^\n]*?"speaker": ?"([^"\\\n]+)"'
                   rb'[^\n]*?"split": ?"([a-z]+)"[^\n]*$', re.M)
_TAIL = re.compile(rb'"age": ?(null|-?[0-9][0-9.eE+-]*), ?"age_range": ?(null|\[[^\]\n]*\])'
                   rb'[^\n]*?"snr": ?(null|-?[0-9][0-9.eE+-]*)[^\n]*\}[ \t\r]*$', re.M)


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


def _age(age, age_range) -> float:
    # same rule as Utterance.age_years: the exact age, else the middle of the range
    a = _number(age)
    if math.isnan(a) and isinstance(age_range, (list, tuple)) and len(age_range) == 2:
        a = (_number(age_range[0]) + _number(age_range[1])) / 2
    return a


@dataclass
class _Block:
    """Columns of one block; ``speaker`` holds names until the table numbers them."""

    start: np.ndarray
    length: np.ndarray
    duration: np.ndarray
    speaker: list[str]
    split: np.ndarray
    age: np.ndarray
    snr: np.ndarray


def _floats(raw: list[bytes]) -> np.ndarray:
    """JSON number tokens (or ``null``) -> float64 with NaN for null; ValueError on anything else."""
    a = np.array(raw)  # bytes; numpy parses them as floats
    a[a == b"null"] = b"nan"
    return a.astype(np.float64)


def _fast(block: bytes, starts: np.ndarray, ends: np.ndarray) -> _Block | None:
    """The block's columns, or None when any line needs the exact way."""
    if (np.frombuffer(block, dtype=np.uint8)[starts] != ord("{")).any():
        return None
    head = _HEAD.findall(block)
    if len(head) != len(starts):
        return None
    tail = _TAIL.findall(block)
    if len(tail) != len(starts):
        return None
    durations, speakers, splits = zip(*head)
    ages, ranges, snrs = zip(*tail)
    try:
        duration, age, snr = _floats(durations), _floats(ages), _floats(snrs)
    except ValueError:
        return None
    if not (duration > 0).all() or not np.isfinite(duration).all():
        return None
    codes = {s: _SPLIT_CODE.get(s.decode()) for s in set(splits)}
    if None in codes.values():
        return None
    missing = np.flatnonzero(np.isnan(age))
    for i in missing:  # few rows: parse their ranges exactly
        if ranges[i] != b"null":
            try:
                age[i] = _age(None, json.loads(ranges[i]))
            except ValueError:
                return None
    age[~np.isfinite(age)] = np.nan
    snr[~np.isfinite(snr)] = np.nan
    return _Block(start=starts, length=ends - starts, duration=duration,
                  speaker=[s.decode() for s in speakers], split=np.array([codes[s] for s in splits], dtype=np.int8),
                  age=age, snr=snr)


def _exact(block: bytes, starts: np.ndarray, ends: np.ndarray, first_lineno: int, skip) -> _Block:
    """The block's columns by ``json.loads`` per line; bad rows go to ``skip(lineno, why)``."""
    keep, durations, speakers, splits, ages, snrs = [], [], [], [], [], []
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        line, lineno = block[s:e], first_lineno + i
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            spk, split, dur = d["speaker"], d["split"], _number(d["duration"])
        except (ValueError, UnicodeDecodeError):
            skip(lineno, "not JSON")
            continue
        except (KeyError, TypeError) as e:
            skip(lineno, f"lacks {e}" if isinstance(e, KeyError) else "not a JSON object")
            continue
        code = _SPLIT_CODE.get(split) if isinstance(split, str) else None
        if code is None:
            skip(lineno, f"split {split!r} is not train, validation or test")
            continue
        if not dur > 0:
            skip(lineno, f"duration {d['duration']!r} is not a positive number")
            continue
        if isinstance(spk, bool) or not isinstance(spk, (str, int)) or spk == "":
            skip(lineno, "speaker is empty or not a name")
            continue
        keep.append(i)
        durations.append(dur)
        speakers.append(str(spk))
        splits.append(code)
        ages.append(_age(d.get("age"), d.get("age_range")))
        snrs.append(_number(d.get("snr")))
    keep = np.array(keep, dtype=np.int64)
    return _Block(start=starts[keep], length=(ends - starts)[keep], duration=np.array(durations, dtype=np.float64),
                  speaker=speakers, split=np.array(splits, dtype=np.int8),
                  age=np.array(ages, dtype=np.float64), snr=np.array(snrs, dtype=np.float64))


def load_table(path: str | Path, *, on_progress: Callable[[float], None] | None = None) -> Table:
    """Parse a manifest into columns; malformed rows are skipped and counted.

    ``on_progress(fraction_of_bytes_read)`` is called after each block.
    """
    path = Path(path)
    try:
        fh = path.open("rb")
        size = path.stat().st_size
    except OSError as e:
        raise KidconsoleError(f"cannot open manifest {path}: {e.strerror}") from e
    blocks: list[_Block] = []
    skipped, examples = 0, []

    def skip(lineno: int, why: str) -> None:
        nonlocal skipped
        skipped += 1
        if len(examples) < MAX_EXAMPLES:
            examples.append(f"{path}:{lineno}: {why}")

    with fh:
        offset, lineno, rest = 0, 1, b""
        while True:
            chunk = fh.read(BLOCK_BYTES)
            data = rest + chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than a block
                    rest = data
                    continue
                block, rest = data[:cut], data[cut:]
            else:  # the end: a last line may lack its newline
                block, rest = data, b""
                if not block:
                    break
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + 1
            if len(ends) == 0 or ends[-1] != len(block):
                ends = np.r_[ends, len(block)]
            starts = np.r_[0, ends[:-1]]
            cols = _fast(block, starts, ends) or _exact(block, starts, ends, lineno, skip)
            cols.start = cols.start + offset
            blocks.append(cols)
            offset += len(block)
            lineno += len(starts)
            if on_progress is not None:
                on_progress(offset / size if size else 1.0)
            if not chunk:
                break
    speaker_ids: dict[str, int] = {}
    speaker = np.concatenate([np.array([speaker_ids.setdefault(s, len(speaker_ids)) for s in b.speaker],
                                       dtype=np.int32) for b in blocks]) if blocks else np.zeros(0, np.int32)

    def column(name: str, dtype) -> np.ndarray:
        return np.concatenate([getattr(b, name).astype(dtype) for b in blocks]) if blocks else np.zeros(0, dtype)

    return Table(
        path=path, offset=column("start", np.int64), length=column("length", np.int32),
        duration=column("duration", np.float64), speaker=speaker, split=column("split", np.int8),
        age=column("age", np.float32), snr=column("snr", np.float32), speakers=list(speaker_ids),
        skipped=skipped, skipped_examples=examples,
    )
