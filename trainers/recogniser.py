"""A trained model ready to decode audio, from whatever form it was saved in.

``load_recogniser(MODEL)`` accepts a run directory (its export: ``exports/merged``,
else ``exports/adapter``), a merged export (a CTC model folder of the wav2vec2
family: wav2vec2, HuBERT, WavLM, Conformer), an adapter
export (PEFT, merged into the base named in its ``adapter_config.json``) or an
ONNX export (a folder with ``model.onnx``, or the ``.onnx`` file). Each has its
processor beside it (``vocab.json``, ``processor_config.json``) and, for ONNX,
the model's ``config.json`` (the feature encoder's strides give the frames).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from kidconsole import rundir
from kidconsole.errors import KidconsoleError

MERGED, ADAPTER, ONNX = "merged", "adapter", "onnx"


def resolve_model(path: str | Path) -> tuple[str, Path]:
    """(kind, folder or file) of a model argument; an error says what was expected."""
    p = Path(path).expanduser().resolve()
    if p.is_file() and p.suffix == ".onnx":
        return ONNX, p
    if not p.is_dir():
        raise KidconsoleError(f"{p}: no such model: expected a run directory, an export folder or a .onnx file")
    if (p / rundir.ONNX_MODEL).is_file():
        return ONNX, p / rundir.ONNX_MODEL
    if (p / "adapter_config.json").is_file():
        return ADAPTER, p
    if (p / "config.json").is_file():
        return MERGED, p
    if (p / rundir.STATUS).is_file() or (p / rundir.EXPORTS).is_dir():
        for name in (MERGED, ADAPTER):
            folder = p / rundir.EXPORTS / name
            if folder.is_dir() and any(folder.iterdir()):
                return resolve_model(folder)
        raise KidconsoleError(f"{p}: a run directory without exports/merged or exports/adapter "
                              f"(has it finished?)")
    raise KidconsoleError(f"{p}: not a model: no config.json, adapter_config.json or {rundir.ONNX_MODEL} in it")


def _vocab(folder: Path) -> dict[str, int]:
    from kidconsole.phonemes import vocab

    path = folder / "vocab.json"
    if not path.exists():
        return vocab()
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KidconsoleError(f"{path}: unreadable vocabulary: {e}") from e


def _feature_extractor(folder: Path):
    from transformers import Wav2Vec2FeatureExtractor

    from trainers.tokenizer import build_feature_extractor

    if any((folder / name).exists() for name in ("processor_config.json", "preprocessor_config.json")):
        return Wav2Vec2FeatureExtractor.from_pretrained(str(folder))
    return build_feature_extractor()


def _load_adapter(folder: Path, sample_rate: int):
    from trainers.model import merged_adapter

    return merged_adapter(folder, sample_rate).model


@dataclass
class Recogniser:
    """A model as a forward (trainers.evaluate) with what decoding its output needs."""
    path: Path
    kind: str                  # merged, adapter or onnx-<precision> (onnx when unknown)
    forward: object            # TorchForward or OnnxForward
    vocab: dict[str, int]
    device: str

    @property
    def inverse_vocab(self) -> dict[int, str]:
        return {i: t for t, i in self.vocab.items()}

    @property
    def sample_rate(self) -> int:
        return int(self.forward.feature_extractor.sampling_rate)

    @property
    def config(self):
        return self.forward.config

    def min_samples(self) -> int:
        """The shortest input the feature encoder makes a frame of."""
        n = 1
        for k, s in reversed(list(zip(self.config.conv_kernel, self.config.conv_stride))):
            n = (n - 1) * s + k
        return n

    def describe(self) -> dict:
        from kidconsole.phonemes import SYMBOLS

        return {"path": str(self.path), "kind": self.kind, "device": self.device, "sample_rate": self.sample_rate,
                "vocab_size": len(self.vocab), "phones": [t for t in self.vocab if t in SYMBOLS]}


def load_recogniser(path: str | Path, device: str = "cpu", threads: int | None = None) -> Recogniser:
    from transformers import AutoConfig, AutoModelForCTC

    from trainers.evaluate import TorchForward

    kind, where = resolve_model(path)
    folder = where.parent if kind == ONNX else where
    if device == "cuda" and kind != ONNX and not torch.cuda.is_available():
        raise KidconsoleError("--device cuda: PyTorch sees no CUDA GPU here; use --device cpu")
    if kind != ONNX:
        from trainers.model import check_weights

        check_weights(folder, f"model {folder}", "copy the export again, or use the run's other export "
                      f"({rundir.EXPORTS}/{MERGED} or {rundir.EXPORTS}/{ADAPTER}) if it is whole")
    fe = _feature_extractor(folder)
    try:
        if kind == ONNX:
            from trainers.onnx import OnnxForward

            record = folder / rundir.EXPORT_RECORD
            label = json.loads(record.read_text(encoding="utf-8")).get("kind", ONNX) if record.exists() else ONNX
            config = AutoConfig.from_pretrained(str(folder))
            return Recogniser(where, label, OnnxForward(where, config, fe, device, threads), _vocab(folder), device)
        model = _load_adapter(folder, int(fe.sampling_rate)) if kind == ADAPTER else \
            AutoModelForCTC.from_pretrained(str(folder))
    except OSError as e:
        raise KidconsoleError(f"{folder}: cannot load the model: {e}") from e
    model = model.float().to(device).eval()
    return Recogniser(folder, kind, TorchForward(model, fe, device=device), _vocab(folder), device)
