"""The optimizer: AdamW over the trainable parameters, one parameter group per ``train.lr_groups`` entry.

Each configured group claims the trainable parameters its pattern matches (kidconsole/param_groups.py);
what no group claims forms the default group, which follows the phase's LR. A group of LR 0 is frozen:
its parameters stop being trainable (no gradient, not in the optimizer, not in checkpoints). Every group
warms up and decays like the phase (``lr_at``), from its own peak and with its own warmup.
"""

from __future__ import annotations

import math

import torch

from kidconsole.config import Phase
from kidconsole.errors import KidconsoleError
from kidconsole.param_groups import parse_pattern

DEFAULT = "default"


def lr_at(phase: Phase, phase_step: int, phase_total: int, schedule: str, peak: float | None = None,
          warmup: int | None = None) -> float:
    """Linear warmup to the peak (the phase's LR unless given), then decay (linear or cosine) to 0 at the
    phase's last step."""
    peak = phase.lr if peak is None else peak
    warm = phase.warmup if warmup is None else warmup
    if warm and phase_step < warm:
        return peak * (phase_step + 1) / warm
    if schedule == "constant":
        return peak
    span = max(1, phase_total - warm)
    done = min(1.0, (phase_step - warm) / span)
    return peak * (1.0 - done) if schedule == "linear" else peak * 0.5 * (1.0 + math.cos(math.pi * done))


def group_lr(group, phase: Phase, phase_step: int, phase_total: int, schedule: str) -> float:
    """A configured group's LR at this step (``group``: an ``LrGroup``; None: the default group)."""
    if group is None:
        return lr_at(phase, phase_step, phase_total, schedule)
    peak = group.lr if group.lr is not None else phase.lr * group.scale
    return lr_at(phase, phase_step, phase_total, schedule, peak=peak, warmup=group.warmup)


def build_param_groups(model, groups) -> tuple[list[dict], list]:
    """AdamW's parameter groups (each with its ``name``) and the configured group of each (None: the default
    group). Freezes the groups of LR 0. KidconsoleError names a parameter claimed by two groups and a group
    that claims no trainable parameter."""
    patterns = [parse_pattern(g.params) for g in groups]
    claimed: list[list] = [[] for _ in groups]
    rest = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hits = [i for i, pat in enumerate(patterns) if pat.matches(name)]
        if len(hits) > 1:
            i, j = hits[:2]
            raise KidconsoleError(f"train.lr_groups: parameter {name} is claimed by groups {i} ({groups[i].params!r}) "
                                  f"and {j} ({groups[j].params!r}): a parameter may be in one group only")
        (claimed[hits[0]] if hits else rest).append(p)
    for i, (g, params) in enumerate(zip(groups, claimed)):
        if not params:
            raise KidconsoleError(f"train.lr_groups.{i}.params: {g.params!r} matches no trainable parameter of "
                                  f"this model (LoRA {'on' if any('lora_' in n for n, _ in model.named_parameters()) else 'off'})")
    out, specs = [], []
    for g, params in zip(groups, claimed):
        if g.frozen:
            for p in params:
                p.requires_grad_(False)
            continue
        out.append({"params": params, "name": g.label})
        specs.append(g)
    if rest:
        out.insert(0, {"params": rest, "name": DEFAULT})
        specs.insert(0, None)
    return out, specs


def make_optimizer(model, groups, lr: float, weight_decay: float):
    """AdamW over the model's trainable parameters in their groups, and the configured group of each."""
    param_groups, specs = build_param_groups(model, groups)
    if not param_groups:
        raise KidconsoleError("train.lr_groups: every trainable parameter is frozen (LR 0): nothing to train")
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay), specs
