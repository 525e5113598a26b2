"""Fixtures: a tiny model and the tone corpus, a pool with speakers, ages and SNRs of several buckets."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from trainers.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "model", hidden=32, layers=1)


@pytest.fixture(scope="session")
def tones(tmp_path_factory) -> dict[str, Path]:
    from trainers.tiny import tone_corpus

    return tone_corpus(tmp_path_factory.mktemp("tones"), n_train=30, n_valid=4, n_test=4)
