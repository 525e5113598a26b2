"""The learning-rate schedule: warmup then linear decay to 0 in each phase, as HF's linear schedule (the
reference's) and as the report's figures show it."""

import pytest
import torch

from trainers.optim import lr_at


def test_linear_decay_is_hf_get_linear_schedule_with_warmup(shipped_config):
    from transformers import get_linear_schedule_with_warmup

    cfg = shipped_config("pilot_148h")
    phase, total = cfg.phases[1], 5_000  # lr 3e-4, warmup 1,000
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=phase.lr)
    sched = get_linear_schedule_with_warmup(opt, phase.warmup, total)
    hf = []
    for _ in range(total):
        hf.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [lr_at(phase, s, total, cfg.train.schedule) for s in range(total)]
    # after warmup: the same decay, step for step
    assert ours[phase.warmup:] == pytest.approx(hf[phase.warmup:], rel=1e-9, abs=1e-15)
    # warmup: the same ramp one step ahead (ours does not spend its first step at lr 0)
    assert ours[:phase.warmup - 1] == pytest.approx(hf[1:phase.warmup], rel=1e-9)
    assert max(ours) == phase.lr and ours[phase.warmup - 1] == phase.lr and ours[-1] > 0


def test_the_r32_run_is_at_the_reports_lr_at_step_112800(shipped_config):
    # the report, at step 112,800 of 332,211 of the r=32 run: "LR 3.3e-5" (peak 5e-5, warmup 2,000)
    cfg = shipped_config("full_3500h_r32")
    (phase,) = cfg.phases
    assert cfg.train.schedule == "linear"
    assert f"{lr_at(phase, 112_800, 332_211, cfg.train.schedule):.1e}" == "3.3e-05"
