"""Exports: the adapter alone (PEFT, safetensors) and the merged model, each with the processor the run
used (our tokenizer, the base checkpoint's feature extractor).

``exports/adapter`` loads with ``PeftModel.from_pretrained(base, path)``;
``exports/merged`` with ``transformers.pipeline("automatic-speech-recognition", model=path)``.
Each is written to a temporary folder and renamed, so a half-written export never shows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kidconsole import rundir


def _atomic_dir(final: Path):
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def _swap(tmp: Path, final: Path) -> Path:
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def export_adapter(model, processor, run_dir: str | Path) -> Path:
    """The PEFT adapter (and the CTC head, when it is not the checkpoint's own) with the processor."""
    final = Path(run_dir) / rundir.EXPORTS / "adapter"
    tmp = _atomic_dir(final)
    # the head, when it is not the checkpoint's, is one of the adapter's modules_to_save; PEFT's guess that a
    # head of another size is a resized embedding would ask the model for input embeddings it does not have
    model.save_pretrained(str(tmp), safe_serialization=True, save_embedding_layers=False)
    processor.save_pretrained(str(tmp))
    return _swap(tmp, final)


def export_merged(model, processor, run_dir: str | Path) -> Path:
    """The full model with LoRA merged in (the model passed is consumed when it is a PEFT model)."""
    final = Path(run_dir) / rundir.EXPORTS / "merged"
    tmp = _atomic_dir(final)
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    merged.save_pretrained(str(tmp), safe_serialization=True)
    processor.save_pretrained(str(tmp))
    return _swap(tmp, final)
