"""Checkpoints: accelerate's state saving, made atomic, pruned without losing the best.

Naming, completeness and which checkpoint is the newest are the run
directory's rules (``kidconsole.rundir.checkpoints``): a checkpoint is written
to ``checkpoints/.tmp-<name>``, completed with ``trainer_state.json``, then
sealed (the ``COMPLETE`` marker, the rename). Only trainable tensors are saved
(a save-state hook drops the frozen base weights), so a LoRA checkpoint of
XLS-R 300M is megabytes, not 1.2 GB.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

from safetensors.torch import load_file

from kidconsole.errors import KidconsoleError
from kidconsole.rundir import checkpoint_name, complete_checkpoints, newest_checkpoint, seal_checkpoint, tmp_checkpoint

__all__ = ["checkpoint_name", "install_hooks", "save_checkpoint", "read_state", "load_checkpoint", "load_resumable",
           "damaged_file", "load_weights", "read_weights", "prune"]
STATE = "trainer_state.json"
WEIGHTS = "model.safetensors"  # accelerate's name for the first model's weights


def install_hooks(accelerator) -> None:
    """Save only trainable tensors; load them without requiring the frozen ones."""

    def save_hook(models, weights, output_dir):
        for i, model in enumerate(models):
            keep = {n for n, p in model.named_parameters() if p.requires_grad}
            weights[i] = {k: v for k, v in weights[i].items() if k in keep}

    accelerator.register_save_state_pre_hook(save_hook)


def save_checkpoint(accelerator, root: str | Path, name: str, state: dict) -> Path:
    """Every rank calls this (accelerate saves each rank's RNG state); rank 0 finishes it."""
    root = Path(root)
    tmp, final = tmp_checkpoint(root, name), root / name
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            (tmp / STATE).write_text(json.dumps(state, indent=1), encoding="utf-8")
            seal_checkpoint(tmp, final)
    except Exception as e:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)  # its space back; the complete checkpoints stay as they were
        full = disk_full(root)
        if full is not None:
            newest = newest_checkpoint(root)
            raise KidconsoleError(f"disk full at {root}: checkpoint {name} could not be written ({full}); "
                                  + (f"resumable from {newest.name}" if newest else "no complete checkpoint")) from e
        raise
    accelerator.wait_for_everyone()
    return final


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
PROBE_BYTES = 1 << 20


def disk_full(folder: str | Path) -> str | None:
    """Why ``folder`` takes no more data (no space, quota, file size limit), by writing a 1 MiB probe;
    None when it does. torch's and safetensors' writers report a failed write without its errno."""
    probe = Path(folder) / f".probe.{os.getpid()}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as e:
        return e.strerror if e.errno in DISK_FULL else None
    try:
        left, chunk = PROBE_BYTES, b"\0" * 65536
        while left > 0:
            left -= os.write(fd, chunk[:left])
        os.fsync(fd)
        return None
    except OSError as e:
        return e.strerror if e.errno in DISK_FULL else None
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def read_state(path: str | Path) -> dict:
    return json.loads((Path(path) / STATE).read_text(encoding="utf-8"))


def load_checkpoint(accelerator, path: str | Path) -> dict:
    """Restore model (trainable tensors), optimizer and RNG states; returns the trainer state."""
    accelerator.load_state(str(path), strict=False)
    return read_state(path)


def damaged_file(path: str | Path) -> str | None:
    """The first file of checkpoint ``path`` that its own reader refuses, as "``file``: why"; None when every
    file reads. Each file is read whole (safetensors, torch's pickles, the trainer state): it is called once a
    load has failed, to name the file (torch's and safetensors' errors name none)."""
    import torch
    from safetensors import safe_open

    def check(f: Path) -> None:
        if f.suffix == ".safetensors":
            with safe_open(str(f), framework="pt") as h:
                for k in h.keys():
                    h.get_tensor(k)
        elif f.suffix in (".bin", ".pkl", ".pt"):
            torch.load(f, map_location="cpu", weights_only=False)
        elif f.suffix == ".json":
            json.loads(f.read_text(encoding="utf-8"))

    path = Path(path)
    if not (path / STATE).is_file():
        return f"{path / STATE}: missing"
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        try:
            check(f)
        except Exception as e:  # whatever the reader raises: the file is what matters
            return f"{f}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
    return None


def load_resumable(accelerator, root: str | Path, warn) -> tuple[Path, dict]:
    """Load the newest complete checkpoint under ``root`` that loads, on every process: (its folder, its trainer
    state). One that does not load (a file cut short or corrupt though sealed) is named with its file through
    ``warn(message)`` (the main process's), and the previous complete one is tried. Every process tries the same
    checkpoint and they agree on the outcome (a file of one rank may be the damaged one). ``KidconsoleError``
    naming each checkpoint and its file when none loads."""
    import torch

    tried = []
    found = complete_checkpoints(root)
    for i, path in enumerate(reversed(found)):
        try:
            state, failed = load_checkpoint(accelerator, path), None
        except Exception as e:  # a damaged file fails in torch, safetensors or json, naming no file
            state, failed = None, e
        flag = torch.tensor(float(failed is not None), device=accelerator.device)
        if accelerator.num_processes > 1:
            flag = accelerator.reduce(flag, "sum")
        if not flag.item():
            return path, state
        why = damaged_file(path) or (f"{path}: {type(failed).__name__}: {failed}" if failed is not None
                                     else f"{path}: another process could not load its part")
        tried.append(why)
        older = found[-2 - i] if i + 1 < len(found) else None
        if older is not None and accelerator.is_main_process:
            warn(f"checkpoint {path.name} cannot be loaded ({why}); resuming from the previous complete one, "
                 f"{older.name}")
    raise KidconsoleError(f"no complete checkpoint under {root} can be loaded: " + "; ".join(tried)
                          if tried else f"{root} holds no complete checkpoint")


def read_weights(path: str | Path) -> dict:
    """The trainable tensors a checkpoint holds, named as in the unwrapped model; a file that cannot be read
    (missing, cut short) is an error naming it."""
    f = Path(path) / WEIGHTS
    try:
        state = load_file(str(f))
    except Exception as e:  # safetensors' errors name no file
        raise KidconsoleError(f"{f}: cannot be read ({type(e).__name__}: {e}): the checkpoint is damaged") from e
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(model, path: str | Path, state: dict | None = None) -> None:
    """Only the trainable tensors of a checkpoint (or ``state``, made from the checkpoint at ``path``) into
    ``model`` (a phase starts from the previous best)."""
    state = read_weights(path) if state is None else state
    missing = set(state) - set(model.state_dict())
    if missing:
        raise RuntimeError(f"{path}: checkpoint tensors not in the model: {sorted(missing)[:5]}")
    model.load_state_dict(state, strict=False)


def prune(root: str | Path, keep_last: int, protect: set[str]) -> list[str]:
    """Delete complete checkpoints beyond the newest ``keep_last``, never a protected one."""
    found = complete_checkpoints(root)
    doomed = [p for p in found[:-keep_last] if p.name not in protect] if keep_last else []
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
    return [p.name for p in doomed]
