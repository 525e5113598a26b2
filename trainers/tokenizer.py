"""The phone-level CTC processor: our tokenizer, written from the phone inventory, with the base
checkpoint's own feature extractor.

Phones stay space-separated and ``|`` stays a token between words, so
``decode`` gives back manifest-style phone strings. transformers'
Wav2Vec2PhonemeCTCTokenizer with ``do_phonemize=False`` needs no phonemizer.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2PhonemeCTCTokenizer, Wav2Vec2Processor

from kidconsole.errors import KidconsoleError
from kidconsole.phonemes import PAD, UNK, vocab


def build_tokenizer() -> Wav2Vec2PhonemeCTCTokenizer:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps(vocab(), ensure_ascii=False), encoding="utf-8")
        # no bos/eos: they would add tokens the CTC head does not have;
        # no word delimiter: "|" is a phone-level token the model predicts and we keep
        return Wav2Vec2PhonemeCTCTokenizer(
            str(path), unk_token=UNK, pad_token=PAD, bos_token=None, eos_token=None,
            word_delimiter_token=None, do_phonemize=False,
        )


def build_feature_extractor(sample_rate: int = 16000) -> Wav2Vec2FeatureExtractor:
    # XLS-R's settings: per-utterance normalisation and an attention mask
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=sample_rate, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=True)


def _preprocessor_file(folder: Path) -> Path | None:
    """The file that holds a checkpoint's feature extractor settings, in transformers' order: nested in
    processor_config.json (as transformers 5 saves a processor), else preprocessor_config.json; None when
    it has neither."""
    nested = folder / "processor_config.json"
    if nested.is_file():
        try:
            saved = json.loads(nested.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return nested  # unreadable: from_pretrained says why, and the error names it
        if isinstance(saved, dict) and ("feature_extractor" in saved or "audio_processor" in saved):
            return nested
    legacy = folder / "preprocessor_config.json"
    return legacy if legacy.is_file() else None


def checkpoint_feature_extractor(folder: str | Path, model_config, sample_rate: int) -> Wav2Vec2FeatureExtractor:
    """The checkpoint's own preprocessing (its preprocessor_config.json, or the ``feature_extractor`` of its
    processor_config.json: sampling rate, ``do_normalize``, ``return_attention_mask``), else XLS-R's. A model with ``feat_extract_norm: group`` (wav2vec2-base
    style) gets no attention mask and zero padding, as transformers documents for it."""
    path = _preprocessor_file(Path(folder))
    if path is not None:
        try:
            fx = Wav2Vec2FeatureExtractor.from_pretrained(str(folder))
        except Exception as e:  # any parse failure: say which file
            raise KidconsoleError(f"{path}: cannot be read: {type(e).__name__}: {e}") from e
        if fx.sampling_rate != sample_rate:
            raise KidconsoleError(f"data.sample_rate {sample_rate} differs from the checkpoint's sampling rate "
                                  f"{fx.sampling_rate} ({path}): set data.sample_rate: {fx.sampling_rate} "
                                  f"(audio at other rates is resampled to it)")
    else:
        fx = build_feature_extractor(sample_rate)
    if getattr(model_config, "feat_extract_norm", "layer") == "group":
        fx.return_attention_mask = False
        fx.padding_value = 0.0
    return fx


def build_processor(sample_rate: int = 16000, feature_extractor: Wav2Vec2FeatureExtractor | None = None
                    ) -> Wav2Vec2Processor:
    """Our phone tokenizer with ``feature_extractor`` (XLS-R's settings when none is given)."""
    return Wav2Vec2Processor(feature_extractor=feature_extractor or build_feature_extractor(sample_rate),
                             tokenizer=build_tokenizer())
