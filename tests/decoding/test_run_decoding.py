"""A run's test evaluation decoded by its config's ``decode`` section: the LM built from its train manifests
into its exports, the weight chosen on validation, the test event saying how it was decoded."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_a_run_with_a_beam_and_lm_train_builds_its_lm_tunes_on_validation_and_records_the_decoder(
        tmp_path, tiny_run_config, train_to_end):
    from trainers.tiny import build_tiny, tone_corpus

    from kidconsole.phone_lm import check_phone_lm, info_path
    from kidconsole.phonemes import SYMBOLS

    tones = tone_corpus(tmp_path / "tones", n_train=16, n_valid=4, n_test=4)
    base = build_tiny(tmp_path / "base", hidden=32, layers=1)
    cfg = tiny_run_config(base, tones, data__num_workers=0, train={"log_every": 5, "eval_every": 1000},
                          decode={"decoder": "beam", "beam": 4, "lm": "train", "lm_order": 2,
                                  "tune_lm_weights": [0.0, 0.5]})
    run = train_to_end(cfg, tmp_path / "run.yaml", tmp_path / "run")
    lm = run / "exports" / "lm" / "phones.arpa"
    assert check_phone_lm(lm, SYMBOLS)
    assert json.loads(info_path(lm).read_text())["sources"] == [str(tones["train"])]
    test = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if '"test"' in line][-1]
    assert test["lm"] == str(lm) and set(test["lm_weight_per"]) == {"0", "0.5"}
    assert test["decoder"] in ("beam4", "beam4+lm0.5")
