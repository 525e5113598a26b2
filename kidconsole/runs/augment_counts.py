"""A run's augmentation as the console and ``run ls`` show it: the settings of each phase, from the run's
config, and the utterances each augmentation was applied to so far, from its newest ``train`` event."""

from __future__ import annotations

from typing import Any

from kidconsole.config.augment import ranges_text

# the short names shown, in the order the trainer applies them (kidconsole.config.augment.ORDER after speed)
SHOWN = (("masked_utterances", "SpecAugment"), ("speed_perturbed", "speed"))


def applied_counts(train: dict) -> dict[str, int]:
    """Utterances given each augmentation, cumulative, from a ``train`` event (only those given some)."""
    out = {label: train[key] for key, label in SHOWN if isinstance(train.get(key), int) and train[key] > 0}
    augmented = train.get("augmented")
    if isinstance(augmented, dict):
        out.update({str(k): int(v) for k, v in augmented.items() if isinstance(v, (int, float)) and v > 0})
    return out


def counts_line(counts: dict[str, int]) -> str:
    """``SpecAugment 1,204 · speed 398 · pitch 120``, or ``-``."""
    return " · ".join(f"{k} {v:,}" for k, v in counts.items()) or "-"


def augment_lines(augment: Any, spec_augment: bool = True) -> list[str]:
    """One augmentation's settings (a resolved ``Augment`` as a dict), a line each: SpecAugment (unless
    ``spec_augment`` is false: a manifest's, where the phase's applies), speed, then each waveform
    augmentation with a probability above 0."""
    if not isinstance(augment, dict):
        return [f"  {augment}"]
    speed = f"speed {augment.get('speed_prob', 0):.0%}"
    lines = [f"  SpecAugment {augment.get('apply_prob', 0):.0%} of utterances, {speed}" if spec_augment
             else f"  {speed}"]
    for name, spec in (augment.get("waveform") or {}).items():
        if isinstance(spec, dict) and (spec.get("prob") or 0) > 0:
            lines.append(f"  {name} {spec['prob']:.0%}: {ranges_text(spec)}")
    return lines


def settings_lines(config: dict) -> list[str]:
    """Each phase's augmentation, and each of its manifests' own, from a run's resolved config."""
    presets = config.get("augmentations") or {}
    out = []
    for i, phase in enumerate(config.get("phases") or []):
        if not isinstance(phase, dict):
            continue
        choice = phase.get("augment", "none")
        named = f" (preset {choice})" if isinstance(choice, str) else ""
        out.append(f"phase {i + 1} {phase.get('name') or ''}{named}:")
        out += augment_lines(presets.get(choice, choice) if isinstance(choice, str) else choice)
        for m in phase.get("manifests") or []:
            if isinstance(m, dict) and m.get("augment") is not None:
                own = m["augment"]
                out.append(f"  its manifest {m.get('path')}: {'preset ' + own if isinstance(own, str) else 'own'}")
                out += ["  " + line for line in augment_lines(presets.get(own, own) if isinstance(own, str) else own,
                                                              spec_augment=False)]
    return out
