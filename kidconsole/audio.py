"""Reading audio by manifest location: a file path or a member of a zip archive.

soundfile only (torchaudio's own loading needs torchcodec). Zip archives stay
open per process, so reading many members does not reopen the archive. Only a
regular file is read: a FIFO (or a device) in a manifest would block its reader
for good, so it is refused by ``fstat`` on the descriptor that is then read
(``kidconsole.bounded.regular_fd``: no second open, no check-then-open race).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from functools import lru_cache

import numpy as np
import soundfile as sf

from kidconsole.bounded import open_regular, regular_fd
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import split_location


@lru_cache(maxsize=64)
def _open_zip(archive: str, pid: int) -> zipfile.ZipFile:
    # keyed by pid: a forked DataLoader worker must not share the parent's file handle
    return zipfile.ZipFile(open_regular(archive))


def _source(location: str):
    """What soundfile opens: a file descriptor of the regular file (soundfile closes it), or a zip
    member's bytes."""
    path, member = split_location(location)
    if member is None:
        try:
            return regular_fd(path)
        except OSError as e:
            raise KidconsoleError(f"cannot read audio {location}: {e.strerror}") from e
    try:
        data = _open_zip(path, os.getpid()).read(member)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise KidconsoleError(f"cannot read {member} from {path}: {getattr(e, 'strerror', None) or e}") from e
    return io.BytesIO(data)


def open_audio(location: str) -> sf.SoundFile:
    """The file open with its header read (frames, samplerate, channels) and no samples decoded yet:
    a caller that knows the length first can decode straight into its own buffer (``read_into``)."""
    try:  # libsndfile closes the descriptor, also when it cannot open it
        return sf.SoundFile(_source(location), closefd=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise KidconsoleError(f"cannot decode audio {location}: {libsndfile_reason(e)}") from e


def libsndfile_reason(e: Exception) -> str:
    # libsndfile names what it opened: a descriptor number or a BytesIO object ("Error opening 7: ..."); the
    # location is named already
    return re.sub(r"^Error opening .*?: ", "", str(e))


def _decode(f: sf.SoundFile, location: str, **read_args) -> np.ndarray:
    try:
        return f.read(dtype="float32", **read_args)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise KidconsoleError(f"cannot decode audio {location}: {e}") from e


def read_into(f: sf.SoundFile, out: np.ndarray, location: str) -> int:
    """Decodes the next ``len(out)`` frames of an open file into ``out`` (float32, C-contiguous; 1-D for
    a mono file, else frames x channels); returns the frames read (fewer if the file ends early)."""
    return len(_decode(f, location, frames=len(out), out=out))


def read_audio(location: str, *, mono: bool = True) -> tuple[np.ndarray, int]:
    """Samples as float32 (mono: channels averaged; else frames x channels) and the sample rate."""
    with open_audio(location) as f:
        data, sr = _decode(f, location, always_2d=True), f.samplerate
    if not mono:
        return data, sr
    # a mono file needs no averaging copy
    return (data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)), sr


def audio_info(location: str) -> tuple[int, int, int]:
    """(frames, sample rate, channels) without decoding the samples."""
    try:
        with sf.SoundFile(_source(location), closefd=True) as f:
            return f.frames, f.samplerate, f.channels
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise KidconsoleError(f"cannot read audio header {location}: {libsndfile_reason(e)}") from e
