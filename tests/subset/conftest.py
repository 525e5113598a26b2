"""Fixtures of the subset builder's tests: small synthetic manifests shaped like the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from kidconsole.subset.synthetic import write_synthetic_manifest


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """40k utterances, ~70 h; ~40 utterances a speaker so the small splits have dozens of speakers."""
    return write_synthetic_manifest(tmp_path_factory.mktemp("corpus") / "manifest.jsonl", 40_000, seed=7,
                                    utterances_per_speaker=40)
