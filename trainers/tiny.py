"""A tiny Wav2Vec2ForCTC with our vocabulary, saved with its processor.

Stands in for XLS-R 300M in tests, benchmarks and the demo: same classes,
same code paths, a few hundred thousand parameters.
``python -m trainers.tiny OUT_DIR [--hidden 32 --layers 2 --seed 0]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from trainers.tokenizer import build_processor


# the feature encoder: (channels, kernel, stride) per convolution
CONV_80X = ((32, 10, 5), (32, 4, 4), (32, 4, 4))          # 200 frames a second
CONV_320X = ((64, 400, 160), (64, 3, 2))                  # a learned 25 ms / 10 ms filterbank, then 50 frames a second
CONVS = {"80x": CONV_80X, "320x": CONV_320X}


def tiny_config(hidden: int = 32, layers: int = 2, heads: int = 2, vocab_size: int | None = None,
                conv: str = "80x") -> Wav2Vec2Config:
    from kidconsole.phonemes import vocab

    dims, kernels, strides = zip(*CONVS[conv])

    return Wav2Vec2Config(
        vocab_size=vocab_size or len(vocab()), pad_token_id=0,
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=hidden * 2,
        # XLS-R: seven convolutions, 320x downsampling; "320x" reaches its frame rate in two cheap ones
        conv_dim=dims, conv_kernel=kernels, conv_stride=strides,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer", do_stable_layer_norm=True,  # as XLS-R: uses the attention mask
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
        final_dropout=0.0, layerdrop=0.0, mask_time_prob=0.05,  # > 0 creates the mask embedding
        ctc_loss_reduction="mean", ctc_zero_infinity=True,
    )


def build_tiny(out_dir: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0, heads: int = 2,
               conv: str = "80x") -> Path:
    """Random-weight tiny model + processor saved to ``out_dir``."""
    torch.manual_seed(seed)
    out = Path(out_dir)
    model = Wav2Vec2ForCTC(tiny_config(hidden=hidden, layers=layers, heads=heads, conv=conv))
    model.save_pretrained(out)
    build_processor().save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainers.tiny", description=__doc__)
    ap.add_argument("out_dir")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--conv", choices=sorted(CONVS), default="80x", help="feature encoder (default 80x)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(build_tiny(a.out_dir, hidden=a.hidden, layers=a.layers, seed=a.seed, heads=a.heads, conv=a.conv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


TONE_PHONES = ("G", "N", "D", "M", "S", "A", "O", "I", "U", "EO")


def tone_corpus(root: str | Path, *, n_train: int = 48, n_valid: int = 12, n_test: int = 12, seed: int = 0,
                sample_rate: int = 16000, phone_seconds: float = 0.1, noise: float = 0.01) -> dict[str, Path]:
    """A learnable toy corpus: each phone is a tone of its own pitch (amplitude 0.5), words are
    separated by short silences, under white noise of standard deviation ``noise``. Writes WAVs and
    train/valid/test manifests under ``root``, and every utterance's phone boundaries (``[phone, start s,
    end s]``, the word separator ``|`` the silence between words) to ``root/phone_times.jsonl``; returns
    the manifest paths by split."""
    import numpy as np
    import soundfile as sf

    from kidconsole.manifest import Utterance, write_manifest

    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    freq = {p: 220.0 * 2 ** (i / 4) for i, p in enumerate(TONE_PHONES)}
    step = int(phone_seconds * sample_rate)
    t = np.arange(step) / sample_rate
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades: no clicks between phones
    out = {}
    times = []
    for split, n in (("train", n_train), ("validation", n_valid), ("test", n_test)):
        rows = []
        for k in range(n):
            words = [[str(rng.choice(TONE_PHONES)) for _ in range(int(rng.integers(2, 4)))]
                     for _ in range(int(rng.integers(1, 4)))]
            parts = []
            spans, pos = [], step // 2
            for i, w in enumerate(words):
                if i:
                    spans.append(["|", (pos - step // 2) / sample_rate, pos / sample_rate])
                parts += [0.5 * np.sin(2 * np.pi * freq[p] * t) * ramp for p in w]
                spans += [[p, (pos + j * step) / sample_rate, (pos + (j + 1) * step) / sample_rate]
                          for j, p in enumerate(w)]
                pos += len(w) * step + step // 2
                parts.append(np.zeros(step // 2))
            wave = np.concatenate([np.zeros(step // 2)] + parts).astype(np.float32)
            wave += rng.normal(0, noise, len(wave)).astype(np.float32)
            uid = f"{split}-{k:04d}"
            times.append({"id": uid, "phones": spans})
            path = root / "wav" / f"{uid}.wav"
            sf.write(path, wave, sample_rate)
            rows.append(Utterance(
                id=uid, audio=str(path), duration=len(wave) / sample_rate, sample_rate=sample_rate,
                speaker=f"spk{k % 6}", split=split, text="", phones=" | ".join(" ".join(w) for w in words),
                age=float(5 + k % 6), gender="MF"[k % 2], snr=float(20 + k % 10)))
        name = {"validation": "valid"}.get(split, split)
        out[name] = root / f"{name}.jsonl"
        write_manifest(out[name], rows)
    (root / "phone_times.jsonl").write_text("".join(json.dumps(d) + "\n" for d in times), encoding="utf-8")
    return out
