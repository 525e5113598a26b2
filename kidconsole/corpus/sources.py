"""Finding label and audio files in folders and zip archives, and pairing them.

The AI Hub layout, zipped or extracted (``shared/aihub-child-speech.md``)::

    ROOT/1.Training/라벨링데이터/TL_x.zip   (or LabelingData/TL_x/ ... *.json)
    ROOT/1.Training/원천데이터/TS_x.zip     (or SourceData/TS_x/ ... *.wav)
    ROOT/2.Validation/.../VL_x.zip, VS_x.zip
    ROOT/3.Test/...

A label is paired with its WAV by mirroring its container (``TL_``/``VL_`` ->
``TS_``/``VS_``, ``라벨링데이터`` -> ``원천데이터``, ``LabelingData`` ->
``SourceData``) and looking for ``File.FileName`` (else the label's own stem
with ``.wav``) there, or beside the label. Only when no mirrored container
exists at all is every audio container of the split searched (a layout of
its own); a mirrored container without the file means the audio is missing.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from kidconsole.manifest import ZIP_SEP

SPLIT_NAMES = ("train", "validation", "test")
_SPLIT_PATTERNS = (
    (re.compile(r"^(\d+\.)?\s*(training|train)$", re.I), "train"),
    (re.compile(r"^(\d+\.)?\s*(validation|valid|val|dev)$", re.I), "validation"),
    (re.compile(r"^(\d+\.)?\s*(test|testing)$", re.I), "test"),
    (re.compile(r"^(\d+\.)?\s*훈련"), "train"),
    (re.compile(r"^(\d+\.)?\s*검증"), "validation"),
    (re.compile(r"^(\d+\.)?\s*(시험|테스트)"), "test"),
)
_MIRROR = (
    (re.compile(r"^([TV])L(?=[_\d.]|$)"), r"\1S"),
    (re.compile(r"라벨링데이터"), "원천데이터"),
    (re.compile(r"^LabelingData$", re.I), "SourceData"),
    (re.compile(r"^Labeling$", re.I), "Source"),
    (re.compile(r"^labels?$", re.I), "wavs"),
)
LABEL_EXT = ".json"
AUDIO_EXT = ".wav"


def detect_split(parts) -> str | None:
    """The source split named by the nearest matching path component, else None."""
    for part in reversed(list(parts)):
        stem = part[:-4] if part.lower().endswith(".zip") else part
        for pattern, name in _SPLIT_PATTERNS:
            if pattern.match(stem):
                return name
    return None


@lru_cache(maxsize=4096)
def mirror(path: str) -> str:
    """The audio-side path of a label-side path (every component rewritten)."""
    parts = []
    for part in Path(path).parts:
        for pattern, repl in _MIRROR:
            part = pattern.sub(repl, part)
        parts.append(part)
    return str(Path(*parts))


@dataclass(frozen=True)
class Container:
    kind: str    # "zip" or "dir"
    path: str    # the archive, or the folder holding the files


@dataclass(frozen=True)
class LabelUnit:
    """A batch of label files parsed together: one work item of the index."""
    container: Container
    members: tuple[str, ...]   # zip member names, or file names inside the folder
    split: str
    fingerprint: str           # changes when these labels (or their split's audio) change

    def location(self, member: str) -> str:
        if self.container.kind == "zip":
            return f"{self.container.path}{ZIP_SEP}{member}"
        return os.path.join(self.container.path, member)


@dataclass
class Discovery:
    units: list[LabelUnit]
    audio: dict[str, tuple[Container, ...]]   # split -> audio containers
    labels: int                               # label files found
    unreadable: list[tuple[str, str]]         # (path, reason) of archives that could not be opened


def _digest(*items) -> str:
    h = hashlib.blake2b(digest_size=12)
    for item in items:
        h.update(repr(item).encode())
        h.update(b"\0")
    return h.hexdigest()


def discover(root: str | Path, *, chunk: int = 2000, default_split: str = "train") -> Discovery:
    """Walk ROOT (a folder or one zip) for label files and audio containers.

    Label files are cut into units of at most ``chunk`` files (one folder or
    one archive each), in a sorted, stable order.
    """
    root = Path(root)
    label_groups: list[tuple[Container, list[str], str, tuple]] = []
    audio: dict[str, list[tuple[Container, tuple]]] = {}
    unreadable: list[tuple[str, str]] = []

    def split_of(path: Path) -> str:
        try:
            rel = path.relative_to(root).parts
        except ValueError:
            rel = path.parts
        return detect_split(rel) or detect_split(root.resolve().parts) or default_split

    def add_zip(path: Path):
        try:
            st = path.stat()
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (OSError, zipfile.BadZipFile) as e:
            unreadable.append((str(path), f"bad_archive: {e}"))
            return
        split = split_of(path)
        stamp = (st.st_size, st.st_mtime_ns)
        labels = sorted(n for n in names if n.lower().endswith(LABEL_EXT))
        if labels:
            label_groups.append((Container("zip", str(path)), labels, split, stamp))
        if any(n.lower().endswith(AUDIO_EXT) for n in names):
            audio.setdefault(split, []).append((Container("zip", str(path)), stamp))

    if root.is_file():
        add_zip(root)
    else:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            here = Path(dirpath)
            labels, has_audio = [], False
            for name in sorted(filenames):
                low = name.lower()
                if low.endswith(LABEL_EXT):
                    labels.append(name)
                elif low.endswith(AUDIO_EXT):
                    has_audio = True
                elif low.endswith(".zip"):
                    add_zip(here / name)
            if labels or has_audio:
                split = split_of(here)
                try:
                    stamp = (here.stat().st_mtime_ns,)
                except OSError:
                    stamp = ()
                if labels:
                    # names, sizes and times of the labels themselves: an edited label re-parses
                    stats = []
                    for name in labels:
                        try:
                            st = os.stat(os.path.join(dirpath, name))
                            stats.append((name, st.st_size, st.st_mtime_ns))
                        except OSError:
                            stats.append((name, -1, -1))
                    label_groups.append((Container("dir", dirpath), labels, split, tuple(stats)))
                if has_audio:
                    audio.setdefault(split, []).append((Container("dir", dirpath), stamp))

    audio_stamp = {split: _digest(sorted((c.path, s) for c, s in items)) for split, items in audio.items()}
    units = []
    for container, members, split, stamp in label_groups:
        for start in range(0, len(members), chunk):
            part = tuple(members[start:start + chunk])
            fp = _digest(container, stamp if container.kind == "zip" else stamp[start:start + chunk],
                         start, len(part), audio_stamp.get(split))
            units.append(LabelUnit(container, part, split, fp))
    return Discovery(
        units=units,
        audio={split: tuple(c for c, _ in items) for split, items in audio.items()},
        labels=sum(len(u.members) for u in units),
        unreadable=unreadable,
    )


# ---- per-process caches (each worker of the index opens archives once) ----

@lru_cache(maxsize=32)
def open_zip(path: str, pid: int) -> zipfile.ZipFile:
    # keyed by pid: a forked worker must not share its parent's file handle
    return zipfile.ZipFile(path)


@lru_cache(maxsize=4096)
def _basenames(kind: str, path: str) -> dict[str, str] | None:
    """File name -> location for one audio container; None when it does not exist."""
    out: dict[str, str] = {}
    if kind == "zip":
        try:
            zf = open_zip(path, os.getpid())
        except (OSError, zipfile.BadZipFile):
            return None
        for name in zf.namelist():
            if name.lower().endswith(AUDIO_EXT):
                out.setdefault(PurePosixPath(name).name, f"{path}{ZIP_SEP}{name}")
        return out
    try:
        names = os.listdir(path)
    except OSError:
        return None
    for name in names:
        if name.lower().endswith(AUDIO_EXT):
            out[name] = os.path.join(path, name)
    return out


@lru_cache(maxsize=8)
def _split_map(containers: tuple[Container, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in containers:
        for name, loc in (_basenames(c.kind, c.path) or {}).items():
            out.setdefault(name, loc)
    return out


def read_member(unit: LabelUnit, member: str) -> bytes:
    """The bytes of one label file of a unit (OSError / KeyError / BadZipFile on failure)."""
    if unit.container.kind == "zip":
        return open_zip(unit.container.path, os.getpid()).read(member)
    with open(os.path.join(unit.container.path, member), "rb") as fh:
        return fh.read()


@lru_cache(maxsize=4096)
def _candidates(container: Container, member_dir: str) -> tuple[Container, ...]:
    """Where a label's audio may be: the mirrored archive or folder, or beside the label."""
    if container.kind == "zip":
        mirrored_dir = mirror(container.path[:-4] if container.path.lower().endswith(".zip") else container.path)
        return (Container("zip", mirror(container.path)),
                Container("dir", os.path.join(mirrored_dir, member_dir) if member_dir else mirrored_dir))
    here = os.path.join(container.path, member_dir) if member_dir else container.path
    return Container("dir", here), Container("dir", mirror(here))


def find_audio(unit: LabelUnit, member: str, file_name: str | None,
               split_audio: tuple[Container, ...]) -> str | None:
    """The audio location for one label, or None when it is missing."""
    member_dir, base = posixpath.split(member)
    stem = base[: -len(LABEL_EXT)] if base.lower().endswith(LABEL_EXT) else base
    wanted = [n for n in dict.fromkeys(
        (posixpath.basename(file_name) if file_name else None, stem + AUDIO_EXT, stem + ".WAV")) if n]
    found_container = False
    for cand in _candidates(unit.container, member_dir):
        names = _basenames(cand.kind, cand.path)
        if not names:
            continue  # absent, or holds no audio: not a pairing place
        found_container = True
        for name in wanted:
            if name in names:
                return names[name]
    if found_container:
        return None
    table = _split_map(split_audio)
    for name in wanted:
        if name in table:
            return table[name]
    return None
