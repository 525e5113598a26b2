"""The persistent G2P cache: SQLite, keyed by (conversion version, normalised transcript).

A conversion is deterministic, so failures are cached too (with their reason).
The version includes g2pK's version and :data:`RULES_VERSION`, so a change in
either makes old entries invisible instead of wrong. Only one process writes
during a batch (workers send their results to the parent); SQLite's locking
with a busy timeout covers several kidconsole processes sharing one file. The
default rollback journal is kept (not WAL), which also works on network
filesystems where home directories of GPU servers often live.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Iterable, Sequence

from kidconsole.errors import KidconsoleError

# Bump when normalisation or the phone mapping changes.
RULES_VERSION = "1"
_CHUNK = 900  # stays under SQLite's old 999-parameter limit

Entry = tuple[str | None, str | None]  # (phones, reason it failed)


def default_cache_path() -> Path:
    """``$KIDCONSOLE_G2P_CACHE``, else ``~/.cache/kidconsole/g2p-cache.sqlite``."""
    env = os.environ.get("KIDCONSOLE_G2P_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "kidconsole" / "g2p-cache.sqlite"


def conversion_version() -> str:
    from kidconsole.g2p.engine import g2pk_version

    return f"rules-{RULES_VERSION}/g2pk-{g2pk_version()}"


class G2PCache:
    """Look up and store conversions of normalised transcripts."""

    def __init__(self, path: str | Path, version: str | None = None):
        self.path = Path(path)
        self.version = version or conversion_version()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS g2p (version TEXT NOT NULL, text TEXT NOT NULL, "
                "phones TEXT, error TEXT, PRIMARY KEY (version, text)) WITHOUT ROWID")
            self._db.commit()
        except (OSError, sqlite3.Error) as e:
            raise KidconsoleError(
                f"G2P cache {self.path}: {e} (set KIDCONSOLE_G2P_CACHE to another file)") from e

    def get_many(self, texts: Sequence[str]) -> dict[str, Entry]:
        """The cached entries among ``texts`` (normalised, unique)."""
        found: dict[str, Entry] = {}
        for start in range(0, len(texts), _CHUNK):
            chunk = texts[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT text, phones, error FROM g2p WHERE version = ? AND text IN ({marks})",
                (self.version, *chunk))
            found.update((text, (phones, error)) for text, phones, error in rows)
        return found

    def put_many(self, entries: Iterable[tuple[str, str | None, str | None]]) -> None:
        """Store (text, phones, error) rows in one transaction."""
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO g2p VALUES (?, ?, ?, ?)",
                                 ((self.version, t, p, e) for t, p, e in entries))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM g2p WHERE version = ?",
                                (self.version,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "G2PCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
