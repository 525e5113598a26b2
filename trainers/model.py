"""The model: base loading, vocabulary check or new CTC head, freezing, LoRA (PEFT).

Two starts: ``ctc`` loads a phoneme CTC checkpoint whose vocabulary must equal
our inventory's; ``encoder`` loads a pretrained-only encoder and puts a new
CTC head sized to our inventory on it (the head is trained and saved with the
adapter). LoRA applies to ``lora.target_modules`` of ``lora.layers``; layers
in ``model.freeze_layers`` get no adapter and no trainable weight.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from kidconsole.errors import KidconsoleError
from kidconsole.phonemes import vocab

HEAD = "lm_head"


def xlsr_300m_config(vocab_size: int | None = None) -> Wav2Vec2Config:
    """facebook/wav2vec2-xls-r-300m's geometry (24 layers, hidden 1024) with our CTC head."""
    return Wav2Vec2Config(
        vocab_size=vocab_size or len(vocab()), pad_token_id=0, hidden_size=1024, num_hidden_layers=24,
        num_attention_heads=16, intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
        conv_bias=True, feat_extract_activation="gelu", num_conv_pos_embeddings=128,
    )


def _download_hint(base: str) -> str:
    return (f"cannot load base model {base!r}: it is not a local folder and the model hub is not reachable. "
            f"On a machine with internet run `huggingface-cli download {base} --local-dir models/{base.split('/')[-1]}`, "
            f"copy that folder here and set model.base to its path")


def base_vocab(base: str) -> dict[str, int] | None:
    """The tokenizer vocabulary saved with a checkpoint (vocab.json), None when it has none."""
    local = Path(base)
    if local.is_dir():
        path = local / "vocab.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(base, "vocab.json")).read_text(encoding="utf-8"))
    except Exception:  # no vocab.json on the hub or offline: the config check below still runs
        return None


def vocab_differences(theirs: dict[str, int], ours: dict[str, int]) -> list[str]:
    """Human-readable differences between a checkpoint's vocabulary and ours (empty when equal)."""
    out = []
    missing = [t for t in ours if t not in theirs]
    extra = [t for t in theirs if t not in ours]
    moved = [f"{t} ({theirs[t]} vs our {ours[t]})" for t in ours if t in theirs and theirs[t] != ours[t]]
    if missing:
        out.append(f"missing from the checkpoint: {' '.join(missing)}")
    if extra:
        out.append(f"not in our inventory: {' '.join(extra)}")
    if moved:
        out.append(f"different ids: {', '.join(moved)}")
    return out


def load_base(model_cfg: dict) -> tuple[Wav2Vec2ForCTC, bool]:
    """The base Wav2Vec2ForCTC and whether its CTC head is new."""
    base, start = model_cfg["base"], model_cfg["start"]
    ours = vocab()
    kwargs = dict(vocab_size=len(ours), pad_token_id=ours["<pad>"], ctc_loss_reduction="mean",
                  ctc_zero_infinity=model_cfg["ctc_zero_infinity"], layerdrop=model_cfg["layerdrop"],
                  # > 0 so the model has its mask embedding; each phase sets the real strength
                  mask_time_prob=0.05)
    try:
        if start == "ctc":
            theirs = base_vocab(base)
            if theirs is not None:
                diff = vocab_differences(theirs, ours)
                if diff:
                    raise KidconsoleError(f"model.base {base}: its CTC vocabulary differs from the phone inventory: "
                                          + "; ".join(diff) + " (use model.start: encoder for a new head)")
            model = Wav2Vec2ForCTC.from_pretrained(base, **kwargs)
            if model.lm_head.out_features != len(ours):
                raise KidconsoleError(f"model.base {base}: CTC head has {model.lm_head.out_features} outputs, "
                                      f"the phone inventory {len(ours)} (use model.start: encoder)")
            return model, False
        model = Wav2Vec2ForCTC.from_pretrained(base, ignore_mismatched_sizes=True, **kwargs)
        return model, True
    except OSError as e:
        if Path(base).exists():
            raise KidconsoleError(f"model.base {base}: cannot load a wav2vec2 model from it: {e}") from e
        raise KidconsoleError(_download_hint(base)) from e


def layer_count(model) -> int:
    return model.config.num_hidden_layers


def configure(model: Wav2Vec2ForCTC, model_cfg: dict, lora_cfg: dict, new_head: bool):
    """Freeze, then wrap in LoRA (or unfreeze for full fine-tuning). Returns the model to train."""
    n_layers = layer_count(model)
    frozen = set(model_cfg["freeze_layers"] or [])
    bad = sorted(i for i in frozen | set(lora_cfg["layers"] or []) if i >= n_layers)
    if bad:
        raise KidconsoleError(f"model.freeze_layers / lora.layers: layers {bad} do not exist "
                              f"(the model has {n_layers}: 0-{n_layers - 1})")
    model.config.apply_spec_augment = True  # strength is set per phase (augment.set_masking)
    if lora_cfg["enabled"]:
        from peft import LoraConfig, get_peft_model

        layers = lora_cfg["layers"] or [i for i in range(n_layers) if i not in frozen]
        peft_cfg = LoraConfig(
            r=lora_cfg["r"], lora_alpha=lora_cfg["alpha"], lora_dropout=lora_cfg["dropout"],
            target_modules=list(lora_cfg["target_modules"]), layers_to_transform=layers, layers_pattern="layers",
            modules_to_save=[HEAD] if new_head else None, bias="none",
        )
        model = get_peft_model(model, peft_cfg)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
        for i in frozen:
            for p in model.wav2vec2.encoder.layers[i].parameters():
                p.requires_grad_(False)
    if model_cfg["freeze_feature_encoder"]:
        for p in unwrap_base(model).wav2vec2.feature_extractor.parameters():
            p.requires_grad_(False)
    return model


def unwrap_base(model) -> Wav2Vec2ForCTC:
    """The Wav2Vec2ForCTC inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def geometry_counts(config: Wav2Vec2Config, model_cfg: dict, lora_cfg: dict, new_head: bool = False) -> tuple[int, int]:
    """Parameter counts of a model built from ``config`` on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        model = Wav2Vec2ForCTC(config)
    return count_parameters(configure(model, model_cfg, lora_cfg, new_head))


def trainable_state(model) -> dict[str, torch.Tensor]:
    """Only the trainable tensors of the state dict (what checkpoints keep)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


def set_threads_from_env() -> None:
    # accelerate sets OMP_NUM_THREADS=1 for multi-process CPU runs; leave the default otherwise
    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
