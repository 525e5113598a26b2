"""The phone-level CTC processor, written from the phone inventory.

Phones stay space-separated and ``|`` stays a token between words, so
``decode`` gives back manifest-style phone strings. transformers'
Wav2Vec2PhonemeCTCTokenizer with ``do_phonemize=False`` needs no phonemizer.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2PhonemeCTCTokenizer, Wav2Vec2Processor

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


def build_processor(sample_rate: int = 16000) -> Wav2Vec2Processor:
    return Wav2Vec2Processor(feature_extractor=build_feature_extractor(sample_rate), tokenizer=build_tokenizer())
