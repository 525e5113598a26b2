"""The batch a worker builds is what transformers' feature extractor makes of the same audio (to float32
rounding), and the model reads its boolean mask as the extractor's int32 one."""

import numpy as np
import soundfile as sf
import torch

from trainers.data import BatchStream, load_rows, normalize_
from trainers.tokenizer import build_feature_extractor


def _stream(rows, batches, fx):
    return BatchStream(rows, batches, feature_extractor=fx, kernels=(10, 4, 4), strides=(5, 4, 4),
                       sample_rate=16000, max_seconds=10.0)


def test_collated_batch_matches_the_feature_extractor_output(tones):
    rows = load_rows(tones["train"])[:6]
    fx = build_feature_extractor()
    batch = _stream(rows, [list(range(6))], fx).load(0)
    waves = [sf.read(r.audio, dtype="float32")[0] for r in rows]
    want = fx(waves, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
    assert len({len(w) for w in waves}) > 1  # padding is exercised
    assert batch.input_values.dtype == want["input_values"].dtype
    assert batch.attention_mask.dtype == torch.bool
    torch.testing.assert_close(batch.input_values, want["input_values"], rtol=0, atol=1e-6)
    assert torch.equal(batch.attention_mask.to(want["attention_mask"].dtype), want["attention_mask"])


def test_without_normalisation_the_batch_is_the_padded_audio(tones):
    rows = load_rows(tones["train"])[:3]
    fx = build_feature_extractor()
    fx.do_normalize = False
    batch = _stream(rows, [[0, 1, 2]], fx).load(0)
    waves = [sf.read(r.audio, dtype="float32")[0] for r in rows]
    want = fx(waves, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
    assert torch.equal(batch.input_values, want["input_values"])


def _normalized(wave):
    out = np.array(wave, dtype=np.float32)
    normalize_(out)
    return out


def test_normalisation_in_place_matches_the_feature_extractor_to_float32_rounding():
    rng = np.random.default_rng(3)
    for n in (1, 2, 17, 16000, 191_999):
        wave = (rng.standard_normal(n) * 0.3 + 0.05).astype(np.float32)
        want = build_feature_extractor().zero_mean_unit_var_norm([wave.copy()], None)[0]
        # a row of a batch buffer, at an offset that is not a multiple of the SIMD width
        buffer = np.zeros(n + 3, dtype=np.float32)
        row = buffer[3:]
        row[:] = wave
        normalize_(row)
        assert row.dtype == np.float32
        np.testing.assert_allclose(row, want, rtol=0, atol=1e-6)
    silence = np.zeros(100, dtype=np.float32)
    normalize_(silence)  # no division by zero: the feature extractor's epsilon
    assert not silence.any()


def test_stereo_files_are_averaged_and_nonfinite_audio_is_dropped(tmp_path, tones):
    rows = load_rows(tones["train"])[:2]
    wave, sr = sf.read(rows[0].audio, dtype="float32")
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([wave, np.zeros_like(wave)], axis=1), sr, subtype="FLOAT")
    broken = tmp_path / "nan.wav"
    bad = wave.copy()
    bad[100] = np.nan
    sf.write(broken, bad, sr, subtype="FLOAT")
    rows[0].audio, rows[1].audio = str(stereo), str(broken)
    batch = _stream(rows, [[0, 1]], build_feature_extractor()).load(0)
    assert batch.ids == [rows[0].id]
    assert "non-finite" in dict(batch.bad)[rows[1].id]
    torch.testing.assert_close(batch.input_values[0], torch.from_numpy(_normalized(wave / 2)), rtol=0, atol=1e-6)


def test_batches_from_a_worker_give_the_model_the_feature_extractor_mask(tones):
    from trainers.data import make_loader

    rows = load_rows(tones["train"])[:8]
    fx = build_feature_extractor()
    batch = next(iter(make_loader(_stream(rows, [list(range(8))], fx), 1)))
    waves = [sf.read(r.audio, dtype="float32")[0] for r in rows]
    want = fx(waves, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
    inputs = batch.inputs("cpu")
    assert torch.equal(inputs["attention_mask"].int(), want["attention_mask"])
    torch.testing.assert_close(inputs["input_values"], want["input_values"], rtol=0, atol=1e-6)
    assert torch.equal(inputs["labels"], batch.labels)


def test_the_attention_mask_covers_each_length_on_any_device():
    from trainers.data import attention_mask

    lengths = torch.tensor([3, 1, 4])
    want = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(attention_mask(lengths, 4), want)
    if torch.cuda.is_available():
        assert torch.equal(attention_mask(lengths.cuda(), 4).cpu(), want)


def test_the_model_reads_the_boolean_mask_as_the_feature_extractor_mask(tones, tiny_model):
    from transformers import Wav2Vec2ForCTC

    rows = load_rows(tones["train"])[:5]
    fx = build_feature_extractor()
    batch = _stream(rows, [list(range(5))], fx).load(0)
    waves = [sf.read(r.audio, dtype="float32")[0] for r in rows]
    want = fx(waves, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
    model = Wav2Vec2ForCTC.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        ours = model(**batch.inputs("cpu"))
        theirs = model(input_values=batch.input_values, attention_mask=want["attention_mask"],
                       labels=batch.labels)
    assert torch.equal(ours.logits, theirs.logits)
    assert torch.equal(ours.loss, theirs.loss)
