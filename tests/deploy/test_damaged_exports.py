"""A finished run whose exported model was damaged (a copy cut short): every command that loads it says which
file is damaged and what to do, instead of a SafetensorError traceback that names no file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _cut_short(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("command, export", [("transcribe", "merged"), ("transcribe", "adapter"),
                                             ("serve", "merged"), ("export", "merged")])
def test_a_damaged_export_is_named_with_what_to_do(trained_run, audio_dir, tmp_path, kidconsole, command, export):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    if export == "adapter":  # the merged export gone: the adapter is what loads
        shutil.rmtree(run / "exports" / "merged")
    damaged = next((run / "exports" / export).glob("*.safetensors"))
    _cut_short(damaged)
    args = {"transcribe": [run, audio_dir / "a16k.wav"], "serve": [run, "--port", "0"],
            "export": [run, "--onnx"]}[command]
    done = kidconsole(command, *args, timeout=120)
    assert done.returncode != 0
    err = done.stderr
    assert "Traceback" not in err and "SafetensorError" not in err.replace("safetensors file", ""), err[-3000:]
    assert str(damaged) in err and "damaged or was not fully copied" in err and "copy the export again" in err, \
        err[-3000:]
