"""Augmentation: speed perturbation (torchaudio) and SpecAugment-style masking.

Speed perturbation happens in the data workers with a random stream drawn
from (seed, phase, epoch, utterance), so it does not depend on which worker
or process loads the utterance, and a resumed run repeats it. Masking is
wav2vec2's own (``mask_time_*`` / ``mask_feature_*`` in the model config),
set per phase.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio.functional as AF

from kidconsole.config import Augment

SPEEDS = (0.9, 1.1)  # 1.0 is the "no perturbation" branch


def speed_factor(prob: float, seed: int, phase: int, epoch: int, index: int) -> float:
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


def set_masking(model_config, aug: Augment) -> None:
    """wav2vec2 reads these at every forward pass in training mode."""
    model_config.mask_time_prob = aug.mask_time_prob
    model_config.mask_time_length = aug.mask_time_length
    model_config.mask_feature_prob = aug.mask_feature_prob
    # a preset made for hidden 1024 must still work on a narrow model
    model_config.mask_feature_length = min(aug.mask_feature_length, max(1, model_config.hidden_size // 4))
