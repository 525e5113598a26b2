"""G2P test fixtures: a private cache file per test, never the user's."""

import pytest


@pytest.fixture
def cache_path(tmp_path, monkeypatch):
    path = tmp_path / "g2p-cache.sqlite"
    monkeypatch.setenv("KIDCONSOLE_G2P_CACHE", str(path))
    return path
