"""The model: base loading, the CTC head (mapped by symbol or new), freezing, LoRA (PEFT).

Any wav2vec2-family CTC checkpoint (``AutoModelForCTC``: wav2vec2, HuBERT,
WavLM, Wav2Vec2-Conformer) can be the base. Two starts: ``ctc`` keeps the
checkpoint's CTC head, its rows mapped onto our inventory by symbol
(trainers/vocab_map.py); ``encoder`` always puts a new head sized to our
inventory on the encoder. A head that differs from the checkpoint's is saved
with the adapter; it is trained when it is new or has new rows. LoRA applies
to ``lora.target_modules`` of ``lora.layers`` (named per family); layers in
``model.freeze_layers`` get no adapter and no trainable weight.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCTC, Wav2Vec2Config, Wav2Vec2ForCTC

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.hub import check_base, check_local, download_hint, looks_like_hub_id
from kidconsole.phonemes import PAD, SYMBOLS, vocab
from trainers.tokenizer import build_processor, checkpoint_feature_extractor
from trainers.vocab_map import mapped_head, plan_head, read_checkpoint_vocab

HEAD = "lm_head"
# what the CTC head is to the run: the checkpoint's own (frozen under LoRA), its rows mapped onto ours
# (frozen under LoRA, saved with the adapter), or trained (new, or with new rows: trained and saved)
HEAD_OWN, HEAD_MAPPED, HEAD_TRAINED = "own", "mapped", "trained"


def xlsr_300m_config(vocab_size: int | None = None) -> Wav2Vec2Config:
    """facebook/wav2vec2-xls-r-300m's geometry (24 layers, hidden 1024) with our CTC head."""
    return Wav2Vec2Config(
        vocab_size=vocab_size or len(vocab()), pad_token_id=0, hidden_size=1024, num_hidden_layers=24,
        num_attention_heads=16, intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
        conv_bias=True, feat_extract_activation="gelu", num_conv_pos_embeddings=128,
    )


@dataclass(frozen=True)
class Family:
    """What differs between the wav2vec2-family models: LoRA's module names and what cannot take LoRA."""
    name: str
    names: dict[str, str] = field(default_factory=dict)   # lora.target_modules name -> this family's module
    no_lora: tuple[str, ...] = ()                          # modules whose weights the forward reads directly
    why: str = ""


FAMILIES = {
    "wav2vec2": Family("wav2vec2"),
    "hubert": Family("HuBERT"),
    "wavlm": Family("WavLM", no_lora=("q_proj", "k_proj", "v_proj", "out_proj"),
                    why="WavLM's attention hands these weights straight to torch's multi_head_attention_forward, "
                        "so an adapter on them would never act"),
    "wav2vec2-conformer": Family("Wav2Vec2-Conformer", names={"q_proj": "linear_q", "k_proj": "linear_k",
                                                              "v_proj": "linear_v", "out_proj": "linear_out"}),
}


def family_of(config, where: str = "model.base") -> Family:
    fam = FAMILIES.get(getattr(config, "model_type", None))
    if fam is None:
        raise KidconsoleError(f"{where}: model type {getattr(config, 'model_type', None)!r} is not supported "
                              f"(supported: {', '.join(FAMILIES)})")
    return fam


@dataclass
class Base:
    """The loaded base and what the run must know about it."""
    model: torch.nn.Module
    head: str                                             # HEAD_OWN, HEAD_MAPPED or HEAD_TRAINED
    processor: object                                     # our tokenizer + the checkpoint's feature extractor
    path: Path                                            # the local folder it was loaded from
    missing: list[str] = field(default_factory=list)      # our symbols the checkpoint lacked (new rows)
    warnings: list[dict] = field(default_factory=list)    # warning events for the run (what, message, ...)
    notes: list[str] = field(default_factory=list)        # lines for stdout.log


def resolve_base(base: str) -> Path:
    """The local folder of ``model.base``: itself, its cached hub snapshot, or a fresh download. Fails fast
    (no retries) when a hub id is neither cached nor reachable."""
    if Path(base).exists() or not looks_like_hub_id(base):
        return check_local(base)
    snap = check_base(base)
    if snap is not None:
        return snap
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(base, allow_patterns=["*.json", "*.txt", "model*.safetensors"]))
        if not any(path.glob("model*.safetensors")):  # older repositories: PyTorch weights only
            path = Path(snapshot_download(base, allow_patterns=["*.json", "*.txt", "pytorch_model*.bin"]))
    except Exception as e:  # the network went between the check and the download
        raise KidconsoleError(f"model.base {base}: download failed ({type(e).__name__}: {e}); "
                              + download_hint(base)) from e
    return path


def check_weights(folder: Path, what: str, advice: str = "copy or download it again") -> None:
    """Each safetensors weights file of ``folder`` must open, its header whole and the file as long as the
    header says (a damaged or cut-short one fails inside transformers or PEFT with a ``SafetensorError``
    that names no file); ``what`` names the model in the error, ``advice`` says what to do."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as e:
            raise KidconsoleError(f"{what}: {path} is not a readable safetensors file ({e}): "
                                  f"it is damaged or was not fully copied; {advice}") from e


def _from_pretrained(folder: Path, base: str, **kwargs):
    try:
        model, info = AutoModelForCTC.from_pretrained(str(folder), output_loading_info=True, **kwargs)
    except KidconsoleError:
        raise
    except Exception as e:  # a weights file transformers cannot use: say which folder, and why
        raise KidconsoleError(f"model.base {base}: cannot load a CTC model from {folder}: "
                              f"{type(e).__name__}: {e}".splitlines()[0]) from e
    return model, info


def fresh_head(model) -> None:
    """A freshly initialised CTC head of the model's size (never a leftover with another meaning)."""
    head = getattr(model, HEAD)
    with torch.no_grad():
        head.weight.normal_(0.0, getattr(model.config, "initializer_range", 0.02))
        if head.bias is not None:
            head.bias.zero_()


def load_base(model_cfg: "ModelSection", sample_rate: int = 16000) -> Base:
    """The base CTC model with our head, and its processor."""
    base, start = model_cfg.base, model_cfg.start
    ours = vocab()
    folder = resolve_base(base)
    try:
        config = AutoConfig.from_pretrained(str(folder))
    except Exception as e:
        raise KidconsoleError(f"model.base {base}: {folder / 'config.json'} cannot be read: {e}") from e
    family_of(config, f"model.base {base}")
    check_weights(folder, f"model.base {base}")
    kwargs = dict(ctc_loss_reduction="mean", ctc_zero_infinity=model_cfg.ctc_zero_infinity,
                  layerdrop=model_cfg.layerdrop,
                  # > 0 so the model has its mask embedding (trainers/augment.py masks with it)
                  mask_time_prob=0.05)
    processor = build_processor(feature_extractor=checkpoint_feature_extractor(folder, config, sample_rate))
    if start == "encoder":
        model, _ = _from_pretrained(folder, base, vocab_size=len(ours), pad_token_id=ours[PAD],
                                    ignore_mismatched_sizes=True, **kwargs)
        fresh_head(model)
        return Base(model, HEAD_TRAINED, processor, folder,
                    notes=[f"model.start encoder: a new CTC head of {len(ours)} outputs"])
    head_size = config.vocab_size
    theirs = read_checkpoint_vocab(folder)
    out = Base(None, HEAD_OWN, processor, folder)
    plan = None
    if theirs is None:
        if head_size != len(ours):
            raise KidconsoleError(
                f"model.base {base}: {folder / 'vocab.json'} is missing, and its CTC head has {head_size} outputs "
                f"where the phone inventory has {len(ours)}: without the checkpoint's vocabulary its rows cannot "
                f"be mapped by symbol (add its vocab.json, or use model.start: encoder for a new head)")
        out.warnings.append({"what": rundir.VOCAB_UNVERIFIED, "count": 1, "message": (
            f"{folder / 'vocab.json'} is missing: the CTC head ({head_size} outputs, as ours) is taken to be "
            f"in our inventory's order")})
    else:
        plan = plan_head(theirs, ours, head_size, getattr(config, "pad_token_id", None), f"model.base {base}")
        share, limit = len(plan.missing) / len(SYMBOLS), model_cfg.max_missing_share
        if share > limit:
            raise KidconsoleError(
                f"model.base {base}: its vocabulary ({theirs.path}) lacks {len(plan.missing)} of our "
                f"{len(SYMBOLS)} symbols ({share:.0%}, more than model.max_missing_share {limit:g}): "
                f"{' '.join(plan.missing)}. Raise model.max_missing_share to train new rows for them, or use "
                f"model.start: encoder for a new head")
    model, info = _from_pretrained(folder, base, **kwargs)
    head = getattr(model, HEAD)
    if any(k.startswith(HEAD + ".") for k in info.get("missing_keys", ())):
        raise KidconsoleError(f"model.base {base}: its weights hold no CTC head ({HEAD}): "
                              f"use model.start: encoder for a new head")
    if head.out_features != head_size:
        raise KidconsoleError(f"model.base {base}: config.json says {head_size} outputs, the CTC head has "
                              f"{head.out_features}")
    out.model = model
    if plan is not None and not plan.is_identity(head_size):
        setattr(model, HEAD, mapped_head(head, plan, ours))
        model.config.vocab_size = len(ours)
        out.head = HEAD_TRAINED if plan.missing else HEAD_MAPPED
        out.missing = plan.missing
        spelled = ", ".join(f"{t!r} as {o!r}" for o, t in plan.spelled.items())
        out.notes.append(f"CTC head mapped by symbol: {len(ours) - len([r for r in plan.rows if r is None])} of "
                         f"{len(ours)} rows from the checkpoint's {head_size}"
                         + (f"; dropped {' '.join(plan.dropped)}" if plan.dropped else "")
                         + (f"; read {spelled}" if spelled else ""))
        if plan.missing:
            out.warnings.append({"what": rundir.VOCAB_MISSING, "count": len(plan.missing), "symbols": plan.missing,
                                 "message": (
                f"the checkpoint's CTC head lacks {len(plan.missing)} of our {len(SYMBOLS)} symbols: "
                f"{' '.join(plan.missing)}; they start as new rows (the mean of its rows for our symbols) "
                f"and are trained")})
    model.config.pad_token_id = ours[PAD]
    return out


ADAPTER_CONFIG = "adapter_config.json"


def load_model_folder(model_cfg: "ModelSection", sample_rate: int = 16000, *, base: str | None = None) -> Base:
    """A model to score as it is, from ``model.base``: a saved CTC model (``load_base``: a base, an export,
    a Hugging Face Trainer's ``checkpoint-N`` or final model) or a PEFT adapter merged into its base (its
    ``adapter_config.json``'s ``base_model_name_or_path``, or ``base``). A Trainer's output folder is refused
    naming its checkpoints; any other folder says what was expected."""
    folder = Path(model_cfg.base)
    if folder.is_dir() and (folder / ADAPTER_CONFIG).is_file():
        return merged_adapter(folder, sample_rate, base)
    if folder.is_dir() and not (folder / "config.json").is_file():
        found = sorted((p for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file()
                        or p.is_dir() and (p / ADAPTER_CONFIG).is_file()), key=lambda p: _step_of(p.name))
        if found:
            raise KidconsoleError(f"{folder}: a training's output folder, not a model: score one of its models "
                                  f"({', '.join(p.name for p in found)}), e.g. --model {found[-1]}")
        raise KidconsoleError(f"{folder}: neither a saved model (config.json and its weights, as save_pretrained "
                              f"writes) nor a PEFT adapter ({ADAPTER_CONFIG})")
    return load_base(model_cfg, sample_rate)


def _step_of(name: str) -> tuple:
    step = name.removeprefix("checkpoint-")
    return (0, int(step), name) if step.isdigit() else (1, 0, name)


def merged_adapter(folder: Path, sample_rate: int = 16000, base: str | None = None) -> Base:
    """A PEFT adapter merged into its base (``base``, else the one its adapter_config.json names), loaded as
    training loads a base. A head the adapter saved (``modules_to_save``) replaces the base's."""
    from peft import PeftModel

    from kidconsole.config import ModelSection

    path = folder / ADAPTER_CONFIG
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KidconsoleError(f"{path}: unreadable: {e}") from e
    if not isinstance(cfg, dict):
        raise KidconsoleError(f"{path}: not a JSON object")
    named = cfg.get("base_model_name_or_path")
    base = base or (named if isinstance(named, str) and named else None)
    if base is None:
        raise KidconsoleError(f"{path}: names no base model (base_model_name_or_path): give it with --base")
    start = "encoder" if cfg.get("modules_to_save") else "ctc"
    try:
        loaded = load_base(ModelSection.model_validate({"base": base, "start": start},
                                                       context={"check_paths": False}), sample_rate)
    except KidconsoleError as e:
        raise KidconsoleError(f"{folder}: the PEFT adapter's base cannot be loaded ({e}); if it lies elsewhere "
                              f"here, give it with --base") from e
    check_weights(folder, str(folder))
    try:
        loaded.model = PeftModel.from_pretrained(loaded.model, str(folder)).merge_and_unload()
    except Exception as e:  # an adapter made for another model: say which and why
        raise KidconsoleError(f"{folder}: the PEFT adapter does not fit its base {base}: "
                              f"{type(e).__name__}: {e}".splitlines()[0]) from e
    loaded.notes.append(f"PEFT adapter {folder} merged into {base}")
    return loaded


def report_base(base: Base, reporter, say=print) -> None:
    """The base's notes to stdout.log and its warnings to events.jsonl (the console card lists them)."""
    from kidconsole import rundir

    for line in base.notes:
        say(line)
    for w in base.warnings:
        say(f"warning: {w['message']}")
        reporter.emit(rundir.EV_WARNING, step=0, **w)


def layer_count(model) -> int:
    return model.config.num_hidden_layers


def backbone(model):
    """The encoder model inside a CTC model (``model.wav2vec2``, ``.hubert``, ``.wavlm``, ...)."""
    return getattr(model, model.base_model_prefix)


def lora_targets(model, names: list[str]) -> list[str]:
    """``lora.target_modules`` in the family's own module names; an error when a name cannot work there."""
    fam = family_of(model.config)
    blocked = [n for n in names if n in fam.no_lora]
    if blocked:
        raise KidconsoleError(
            f"lora.target_modules: {fam.name} models cannot take LoRA on {', '.join(blocked)}: {fam.why}. "
            f"Adapt its feed-forward layers instead (lora.target_modules: [intermediate_dense, output_dense]) "
            f"or fine-tune fully (lora.enabled: false)")
    targets = [fam.names.get(n, n) for n in names]
    layer = backbone(model).encoder.layers[0]
    linear = sorted({name.rsplit(".", 1)[-1] for name, m in layer.named_modules() if isinstance(m, torch.nn.Linear)})
    unknown = [n for n in targets if not any(name == n or name.endswith("." + n) for name, _ in layer.named_modules())]
    if unknown:
        raise KidconsoleError(f"lora.target_modules: {', '.join(unknown)}: no such module in a {fam.name} layer "
                              f"(its linear layers: {', '.join(linear)})")
    return targets


def configure(model, model_cfg: dict, lora_cfg: dict, head: str = HEAD_OWN):
    """Freeze, then wrap in LoRA (or unfreeze for full fine-tuning). Returns the model to train."""
    n_layers = layer_count(model)
    frozen = set(model_cfg.freeze_layers or [])
    bad = sorted(i for i in frozen | set(lora_cfg.layers or []) if i >= n_layers)
    if bad:
        raise KidconsoleError(f"model.freeze_layers / lora.layers: layers {bad} do not exist "
                              f"(the model has {n_layers}: 0-{n_layers - 1})")
    if lora_cfg.enabled:
        from peft import LoraConfig, get_peft_model

        layers = lora_cfg.layers or [i for i in range(n_layers) if i not in frozen]
        peft_cfg = LoraConfig(
            r=lora_cfg.r, lora_alpha=lora_cfg.alpha, lora_dropout=lora_cfg.dropout,
            target_modules=lora_targets(model, list(lora_cfg.target_modules)), layers_to_transform=layers,
            layers_pattern="layers", modules_to_save=[HEAD] if head != HEAD_OWN else None, bias="none",
        )
        model = get_peft_model(model, peft_cfg)
        if head == HEAD_MAPPED:  # saved with the adapter (its rows differ from the checkpoint's), not trained
            for name, p in model.named_parameters():
                if f"{HEAD}.modules_to_save." in name:
                    p.requires_grad_(False)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
        for i in frozen:
            for p in backbone(model).encoder.layers[i].parameters():
                p.requires_grad_(False)
    encoder = backbone(unwrap_base(model)).feature_extractor
    if model_cfg.freeze_feature_encoder or not any(p.requires_grad for p in encoder.parameters()):
        # the model's own call, not requires_grad alone: it also clears the encoder's flag; while that is
        # set, the encoder makes its input require a gradient and every backward runs through the convolutions
        unwrap_base(model).freeze_feature_encoder()
    return model


def unwrap_base(model):
    """The CTC model inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def geometry_counts(config: Wav2Vec2Config, model_cfg: dict, lora_cfg: dict, head: str = HEAD_OWN
                    ) -> tuple[int, int]:
    """Parameter counts of a model built from ``config`` on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        model = Wav2Vec2ForCTC(config)
    return count_parameters(configure(model, model_cfg, lora_cfg, head))


def trainable_state(model) -> dict[str, torch.Tensor]:
    """Only the trainable tensors of the state dict (what checkpoints keep)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


def set_threads_from_env() -> None:
    # accelerate sets OMP_NUM_THREADS=1 for multi-process CPU runs; leave the default otherwise
    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
