"""Fixtures: a tiny model trained on the tone corpus (whose generator writes every phone's boundaries), so
alignments and audits run on a model that hears the phones."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tones(tmp_path_factory) -> dict[str, Path]:
    from trainers.tiny import tone_corpus

    return tone_corpus(tmp_path_factory.mktemp("tones"), n_train=60, n_valid=8, n_test=12)


@pytest.fixture(scope="session")
def tone_model(tmp_path_factory, tones, tiny_run_config, train_to_end) -> Path:
    """A run of the tiny model (the demo's 50-frames-a-second encoder) fully trained on the tones (360 steps, about
    a minute; test PER 0); a run directory with exports/merged."""
    from trainers.tiny import build_tiny

    root = tmp_path_factory.mktemp("tone-model")
    base = build_tiny(root / "init", hidden=64, layers=2, heads=2, conv="320x", seed=0)
    cfg = tiny_run_config(base, tones, name="tones", seed=1, lora={"enabled": False}, data__num_workers=0,
                          train={"log_every": 20, "eval_every": 1000, "keep_last": 1, "heartbeat_seconds": 5.0},
                          phases=[{"name": "only", "epochs": 60, "lr": 5.0e-3, "warmup": 20}])
    return train_to_end(cfg, root / "run.yaml", root / "run")
