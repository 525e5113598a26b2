"""Augmentation: speed perturbation (torchaudio) and per-utterance SpecAugment.

Speed perturbation happens in the data workers with a random stream drawn
from (seed, phase, epoch, utterance), so it does not depend on which worker
or process loads the utterance, and a resumed run repeats it.

SpecAugment is the reference recipe's: each utterance is augmented with the
phase's probability (``apply_prob``) and then gets exactly ``time_masks`` time
masks and ``feature_masks`` feature masks, each of a width drawn uniformly
from 0 to its maximum. wav2vec2's own masking (``mask_time_prob`` and friends)
spreads masks over frames at a rate and cannot say that, so the model's is
switched off and ours acts where wav2vec2's does: on the encoder's input
(the projected features), time masks replaced by the model's trained
``masked_spec_embed``, masked feature channels zeroed. The masks are drawn on
the host from the step's seed (the utterances' frame counts are known there:
no device sync) and applied by a forward pre-hook on the encoder, in training
mode only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torchaudio.functional as AF

from kidconsole.config import Augment

SPEEDS = (0.9, 1.0, 1.1)  # the reference's factors: a perturbed draw may still keep the speed


def speed_factor(prob: float, seed: int, phase: int, epoch: int, index: int) -> float:
    """The utterance's speed: with probability ``prob`` a factor drawn from SPEEDS, else 1.0."""
    if prob <= 0:
        return 1.0
    rng = np.random.default_rng([seed, phase, epoch, index, 7])
    return float(rng.choice(SPEEDS)) if rng.random() < prob else 1.0


def perturb_speed(wave: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Speed (and pitch) changed by ``factor`` through resampling; the length scales by 1/factor."""
    if factor == 1.0:
        return wave
    out, _ = AF.speed(torch.from_numpy(wave)[None], sample_rate, factor)
    return out[0].numpy()


@dataclass
class Masks:
    """One batch's SpecAugment: which frames and channels each utterance loses."""
    time: np.ndarray       # (batch, frames) bool
    feature: np.ndarray    # (batch, hidden) bool
    utterances: int        # utterances augmented (drawn with the phase's apply_prob)


def feature_width(aug: Augment, hidden: int) -> int:
    # a preset made for hidden 1024 must still leave a narrow model most of its channels
    return min(aug.feature_mask_width, max(1, hidden // 4))


def _spans(rng: np.random.Generator, count: int, width: int, length: int) -> list[tuple[int, int]]:
    """``count`` spans of a width drawn from 0..``width`` (at most ``length``), placed inside ``length``."""
    out = []
    for _ in range(count):
        w = min(int(rng.integers(0, width + 1)), length)
        start = int(rng.integers(0, length - w + 1))
        out.append((start, start + w))
    return out


def draw_masks(aug: Augment, frames: Sequence[int], padded: int, hidden: int, rng: np.random.Generator) -> Masks:
    """The masks of a batch whose utterances have ``frames`` encoder frames each (``padded`` the batch's
    width): an utterance is augmented with probability ``aug.apply_prob``; its time masks fall inside
    its own frames, never in the padding."""
    time = np.zeros((len(frames), padded), dtype=bool)
    feature = np.zeros((len(frames), hidden), dtype=bool)
    n = 0
    if aug.apply_prob <= 0:
        return Masks(time, feature, 0)
    fwidth = feature_width(aug, hidden)
    for b, length in enumerate(frames):
        if rng.random() >= aug.apply_prob:
            continue
        n += 1
        for lo, hi in _spans(rng, aug.time_masks, aug.time_mask_width, length):
            time[b, lo:hi] = True
        for lo, hi in _spans(rng, aug.feature_masks, fwidth, hidden):
            feature[b, lo:hi] = True
    return Masks(time, feature, n)


class SpecAugment:
    """Applies the next training batch's masks to the encoder's input of a wav2vec2-family model."""

    def __init__(self, backbone):
        self.backbone = backbone
        self.embed = getattr(backbone, "masked_spec_embed", None)
        # ours replaces the model's: it must not mask a second time
        backbone.config.apply_spec_augment = False
        self._next: Masks | None = None
        self._handle = backbone.encoder.register_forward_pre_hook(self._apply, with_kwargs=True)

    def arm(self, masks: Masks) -> None:
        """Masks for the next forward pass in training mode (used once)."""
        self._next = masks if masks.utterances else None

    def _apply(self, module, args, kwargs):
        masks, self._next = self._next, None
        if masks is None or not module.training:
            return None
        hidden = args[0] if args else kwargs["hidden_states"]
        if hidden.shape[:2] != masks.time.shape or hidden.shape[2] != masks.feature.shape[1]:
            raise RuntimeError(f"SpecAugment masks of shape {masks.time.shape} x {masks.feature.shape[1]} for "
                               f"encoder input {tuple(hidden.shape)}: the frame counts disagree with the model's")
        time = torch.from_numpy(masks.time).to(hidden.device, non_blocking=True)
        feature = torch.from_numpy(masks.feature).to(hidden.device, non_blocking=True)
        if self.embed is not None:
            hidden = torch.where(time[..., None], self.embed.to(hidden.dtype), hidden)
        else:  # a model made without a mask embedding: masked frames are zeroed
            hidden = hidden.masked_fill(time[..., None], 0.0)
        hidden = hidden.masked_fill(feature[:, None, :], 0.0)
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}

    def remove(self) -> None:
        self._handle.remove()
