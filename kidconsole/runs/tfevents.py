"""TensorBoard event files read live: the scalars appended since the last read, by byte offset.

An event file is a TFRecord stream: each record is its length (uint64, little-endian), a masked CRC32C of
those 8 bytes, the serialized ``Event`` protobuf and a masked CRC32C of it. A record not yet wholly written
is left for the next read (never an error); a record whose checksum fails stops that file where it is and
is counted (``corrupt``), and is tried again once the file changes, so a writer caught mid-write on a slow
network filesystem is not mistaken for damage for long. A record longer than ``MAX_RECORD`` (an image or a
graph, never a scalar) is skipped after its length's checksum passes, without being read.

Why the framing is read here and not by TensorBoard's ``EventFileLoader``: TensorBoard (with grpcio, Pillow
and its data server, about 100 MB) would be the light install's largest part; without TensorFlow its loader
computes CRC32C in pure Python (about 8 MB/s measured, against GB/s for google-crc32c's C code), cannot start
at an offset, and reports a damaged record and a half-written one with the same exception. The records are
decoded with TensorBoard's own protobuf messages as tensorboardX ships them (protobuf, no TensorFlow).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import google_crc32c
from google.protobuf.message import DecodeError

from kidconsole.runs.scalars import ScalarSeries, series_key

PATTERN = "events.out.tfevents.*"
HEADER = 12               # length (8) + its masked CRC (4)
FOOTER = 4                # the data's masked CRC
MAX_RECORD = 16 << 20     # bytes: larger records are images, audio or graphs (skipped unread)
READ_BYTES = 32 << 20     # bytes read per call at most: a huge history loads over several polls
MAX_DEPTH = 4             # folders below a run's folder searched for event files (HF: runs/<date_host>/)
_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """TFRecord's checksum: CRC32C, rotated right by 15 bits, plus a constant (mod 2**32)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


Columns = dict[str, tuple[list[int], list[float], list[float]]]  # tag -> (steps, values, wall times)


def _add_scalars(record: bytes, out: Columns, parse) -> None:
    """The scalar values of one serialized Event into ``out``: ``simple_value`` (PyTorch's and tensorboardX's
    writers) or a one-element float tensor (TensorFlow 2's); images, histograms and text are not charts."""
    try:
        ev = parse(record)
    except DecodeError:
        return
    values = ev.summary.value
    if not values:
        return
    step, wall = ev.step, ev.wall_time
    for v in values:
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            value = v.simple_value
        elif kind == "tensor" and v.metadata.plugin_data.plugin_name in ("", "scalars"):
            value = _tensor_scalar(v.tensor)
            if value is None:
                continue
        else:
            continue
        col = out.get(v.tag)
        if col is None:
            col = out[v.tag] = ([], [], [])
        col[0].append(step)
        col[1].append(value)
        col[2].append(wall)


_DT_FLOAT, _DT_DOUBLE = 1, 2


def _tensor_scalar(t) -> float | None:
    if t.tensor_shape.dim:
        return None
    if t.dtype == _DT_FLOAT:
        if t.float_val:
            return float(t.float_val[0])
        if len(t.tensor_content) == 4:
            return struct.unpack("<f", t.tensor_content)[0]
    if t.dtype == _DT_DOUBLE:
        if t.double_val:
            return float(t.double_val[0])
        if len(t.tensor_content) == 8:
            return struct.unpack("<d", t.tensor_content)[0]
    return None


class EventFileTail:
    """Reads the whole records appended to one event file since the last call."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0            # the first byte not yet consumed: a record's start
        self.records = 0           # records read
        self.skipped = 0           # records over MAX_RECORD, passed over unread
        self.corrupt: str | None = None  # why the record at ``offset`` cannot be read (None: it is fine)
        self.resets = 0            # times the file shrank below the offset (rewritten) and was read again
        self._seen: tuple[int, int] | None = None  # (size, mtime_ns) when a record last failed its checksum

    @property
    def pending(self) -> bool:
        """Bytes of a record not yet wholly written wait at the end."""
        try:
            return self.corrupt is None and self.path.stat().st_size > self.offset
        except OSError:
            return False

    def read(self, max_bytes: int = READ_BYTES) -> Columns:
        """The scalars of the whole records appended since the last call, by tag (at most ``max_bytes`` read,
        or one record when it is larger)."""
        from tensorboardX.proto.event_pb2 import Event  # protobuf: imported when an event file is read

        out: Columns = {}
        try:
            fh = open(self.path, "rb")
        except OSError:
            return out
        with fh:
            st = os.fstat(fh.fileno())
            if st.st_size < self.offset:  # rewritten: read it again from the start
                self.offset, self.corrupt, self._seen = 0, None, None
                self.resets += 1
            if self.corrupt is not None:
                if self._seen == (st.st_size, st.st_mtime_ns):
                    return out
                self.corrupt = None  # the file changed: the record may be whole now
            fh.seek(self.offset)
            buf = fh.read(min(max_bytes, st.st_size - self.offset))
            pos, records, size = 0, 0, len(buf)
            crc, unpack, parse = masked_crc, struct.unpack_from, Event.FromString
            while size - pos >= HEADER:
                length, head_crc = unpack("<QI", buf, pos)
                if crc(buf[pos:pos + 8]) != head_crc:
                    self._fail("a record's length fails its checksum", st)
                    break
                end = pos + HEADER + length + FOOTER
                if length > MAX_RECORD:
                    if self.offset + end > st.st_size:
                        break  # not wholly written yet
                    self.skipped += 1
                    pos = end
                    continue
                if end > size:
                    if pos == 0 and self.offset + end <= st.st_size:
                        buf += fh.read(end - size)  # one record larger than a read's budget: read it whole
                        size = len(buf)
                        continue
                    break  # the rest arrives later (or at the next read)
                data = buf[pos + HEADER:end - FOOTER]
                if crc(data) != unpack("<I", buf, end - FOOTER)[0]:
                    self._fail("a record fails its checksum", st)
                    break
                _add_scalars(data, out, parse)
                records += 1
                pos = end
            self.records += records
            self.offset += pos
        return out

    def _fail(self, why: str, st: os.stat_result) -> None:
        self.corrupt = f"{why} at byte {self.offset}"
        self._seen = (st.st_size, st.st_mtime_ns)


def event_files(folder: str | Path, max_depth: int = MAX_DEPTH) -> list[Path]:
    """The event files under ``folder`` (its subfolders to ``max_depth``), oldest writer first: a file's name
    carries its writer's start time, and a folder per writer (Hugging Face's ``runs/<date>_<host>``) sorts
    the same way."""
    folder = Path(folder)
    found: list[Path] = []
    stack = [(folder, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("events.out.tfevents.") and e.is_file(follow_symlinks=False):
                found.append(Path(e.path))
            elif depth < max_depth and e.is_dir(follow_symlinks=False):
                stack.append((Path(e.path), depth + 1))
    return sorted(found, key=lambda p: (p.name.split(".")[3:4], str(p)))


class TensorBoardTail:
    """Every event file under a folder, tailed into chart series (``ScalarSeries``); files that appear later
    (a resumed writer starts a new one) are picked up by the next ``poll``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.files: dict[Path, EventFileTail] = {}
        self.scalars = ScalarSeries()
        self.tags: set[str] = set()

    @property
    def corrupt_files(self) -> list[EventFileTail]:
        return [f for f in self.files.values() if f.corrupt]

    @property
    def pending(self) -> bool:
        return any(f.pending for f in self.files.values())

    def poll(self, max_bytes: int = READ_BYTES) -> int:
        """New points from every file; at most ``max_bytes`` read in all (the rest at the next poll)."""
        for path in event_files(self.folder):
            self.files.setdefault(path, EventFileTail(path))
        new = 0
        left = max_bytes
        for tail in self.files.values():
            if left <= 0:
                break
            before = tail.offset
            columns = tail.read(left)
            left -= tail.offset - before
            for tag, (steps, values, times) in columns.items():
                self.tags.add(tag)
                self.scalars.add(series_key(tag), steps, values, times)
                new += len(steps)
        return new
