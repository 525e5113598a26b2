"""The shipped configs are the reference recipe's settings (docs/training.md, "The reference recipe")."""

import pytest

from kidconsole.config import PRESETS


def test_the_pilot_runs_the_reports_three_phases(shipped_config):
    cfg = shipped_config("pilot_148h")
    table = [(p.epochs, p.lr, p.warmup, p.patience) for p in cfg.phases]
    assert table == [(10, 5e-4, 500, 4), (8, 3e-4, 1000, 3), (5, 1e-4, 500, 3)]
    augs = [cfg.augment_for(p) for p in cfg.phases]
    assert [a.apply_prob for a in augs] == [0.5, 1.0, 0.75]    # SpecAugment on 50% / 100% / 75% of utterances
    assert [a.speed_prob for a in augs] == [0.0, 0.5, 0.5]     # speed perturbation in phases 2 and 3 only
    assert all((p.monitor, p.min_delta) == ("loss", 0.005) for p in cfg.phases)
    assert (cfg.train.save_every, cfg.train.eval_every, cfg.train.keep_last) == (2000, 2000, 2)
    assert (cfg.data.max_batch_utterances, cfg.train.grad_accum) == (8, 2)
    assert cfg.data.valid_utterances is None


@pytest.mark.parametrize("name, r, lr, eval_every, valid, patience", [
    ("full_3500h_r16", 16, 5e-4, 500, None, None),       # all of validation, every 500 steps
    ("full_3500h_r32", 32, 5e-5, 2000, 20000, 15),       # a 20,000-utterance sample, every 2,000 steps
])
def test_the_full_runs_are_the_reports(name, r, lr, eval_every, valid, patience, shipped_config):
    cfg = shipped_config(name)
    (phase,) = cfg.phases
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (r, 2 * r, 0.1)
    assert cfg.model.freeze_layers == list(range(8)) and cfg.model.freeze_feature_encoder
    assert (phase.epochs, phase.lr, phase.warmup, phase.patience) == (3, lr, 2000, patience)
    assert (phase.monitor, phase.min_delta) == ("loss", 0.005)
    assert (cfg.train.eval_every, cfg.train.save_every, cfg.train.keep_last) == (eval_every, 2000, 2)
    assert cfg.data.valid_utterances == valid
    # batch 8 per GPU: every utterance up to max_seconds fits 8 to a batch
    assert cfg.data.max_batch_utterances == 8 and cfg.data.batch_seconds >= 8 * cfg.data.max_seconds
    assert cfg.train.grad_accum == 2


def test_the_presets_are_the_reports_spec_augment():
    for name in ("weak", "medium", "strong"):
        p = PRESETS[name]
        assert (p["time_masks"], p["time_mask_width"], p["feature_masks"], p["feature_mask_width"]) == (2, 30, 2, 15)
    assert [PRESETS[n]["apply_prob"] for n in ("none", "weak", "strong", "medium")] == [0.0, 0.5, 1.0, 0.75]
