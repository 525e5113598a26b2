"""SpecAugment as the reference applies it, and speed perturbation."""

import numpy as np
import pytest
import torch

from kidconsole.config import Augment, PRESETS
from trainers.augment import SPEEDS, SpecAugment, draw_masks, speed_factor


def _aug(name: str, **over) -> Augment:
    return Augment(**{**PRESETS[name], **over})


def _spans(row: np.ndarray) -> list[int]:
    """Widths of the runs of True in a row."""
    edges = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0]))
    return list(edges[1::2] - edges[::2])


def test_an_augmented_utterance_gets_two_time_and_two_feature_masks_of_bounded_width():
    aug = _aug("strong")  # every utterance
    frames = [400, 250, 90]
    rng = np.random.default_rng(0)
    total_t, total_f = [], []
    for _ in range(200):
        m = draw_masks(aug, frames, padded=400, hidden=1024, rng=rng)
        assert m.utterances == 3
        for b, n in enumerate(frames):
            assert not m.time[b, n:].any()  # never in the padding
            t, f = _spans(m.time[b]), _spans(m.feature[b])
            # two masks each; overlapping ones merge into one run
            assert 1 <= len(t) + (m.time[b].sum() == 0) <= 2 and sum(t) <= 2 * 30 and max(t, default=0) <= 60
            assert len(f) <= 2 and sum(f) <= 2 * 15
            total_t.append(m.time[b].sum())
            total_f.append(m.feature[b].sum())
    # widths drawn from 0..30 and 0..15: a mean near 15 and 7.5 per mask (less where two overlap)
    assert 22 < np.mean(total_t) <= 30 and 11 < np.mean(total_f) <= 15
    assert max(total_t) > 45 and min(total_t) < 10


@pytest.mark.parametrize("name, share", [("none", 0.0), ("weak", 0.5), ("medium", 0.75), ("strong", 1.0)])
def test_masking_is_drawn_per_utterance_at_the_presets_rate(name, share):
    rng = np.random.default_rng(1)
    n = sum(draw_masks(_aug(name), [100] * 10, 100, 64, rng).utterances for _ in range(400))
    assert abs(n / 4000 - share) < 0.03


def test_feature_masks_are_capped_on_a_narrow_model():
    m = draw_masks(_aug("strong", feature_mask_width=64), [50], 50, 32, np.random.default_rng(0))
    assert m.feature.sum() <= 2 * 8  # a quarter of 32 channels per mask


def test_speed_perturbation_draws_the_references_factors_at_its_probability():
    draws = [speed_factor(0.5, 3, 1, 0, i) for i in range(6000)]
    changed = sum(d != 1.0 for d in draws) / len(draws)
    assert set(draws) == set(SPEEDS)
    assert abs(changed - 0.5 * 2 / 3) < 0.03  # half are drawn, a third of those keep 1.0
    assert [speed_factor(0.5, 3, 1, 0, i) for i in range(50)] == draws[:50]  # a resume repeats them
    assert {speed_factor(0.0, 3, 1, 0, i) for i in range(100)} == {1.0}


def _encoder_input(model):
    """Captures what the encoder receives."""
    seen = {}
    handle = model.wav2vec2.encoder.register_forward_hook(lambda m, a, kw, out: seen.update(x=(a or (kw["hidden_states"],))[0]),
                                                          with_kwargs=True)
    return seen, handle


def test_spec_augment_masks_the_encoder_input_in_training_only(tiny_model):
    from transformers import Wav2Vec2ForCTC

    model = Wav2Vec2ForCTC.from_pretrained(tiny_model)
    spec = SpecAugment(model.wav2vec2)
    assert model.config.apply_spec_augment is False  # wav2vec2's own masking is off: ours replaces it
    x = torch.randn(2, 16000)
    frames = model._get_feat_extract_output_lengths(torch.tensor(16000)).item()
    hidden = model.config.hidden_size
    masks = draw_masks(_aug("strong"), [frames, frames], frames, hidden, np.random.default_rng(0))
    masks.time[:] = False
    masks.time[0, 3:9] = True
    masks.feature[:] = False
    masks.feature[1, 2:5] = True
    seen, handle = _encoder_input(model)

    model.eval()
    with torch.no_grad():
        clean = model.wav2vec2.feature_projection(model.wav2vec2.feature_extractor(x).transpose(1, 2))[0]
        spec.arm(masks)
        model(x)  # evaluation: no masking, and the armed masks are spent
    assert torch.equal(seen["x"], clean)
    model.train()
    with torch.no_grad():
        model(x)
        assert torch.equal(seen["x"], clean)  # nothing armed: nothing masked (wav2vec2's own is off)
        spec.arm(masks)
        model(x)
    got = seen["x"]
    assert torch.equal(got[0, 3:9], model.wav2vec2.masked_spec_embed.expand(6, -1))
    assert torch.equal(got[0, :3], clean[0, :3]) and torch.equal(got[0, 9:], clean[0, 9:])
    assert torch.count_nonzero(got[1, :, 2:5]) == 0
    assert torch.equal(got[1, :, 5:], clean[1, :, 5:]) and torch.equal(got[1, :, :2], clean[1, :, :2])
    handle.remove()
