"""End to end: `kidconsole demo --headless --quick` trains, evaluates and compares for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_headless_demo_beats_the_base_model_on_the_children_and_reuses_its_work(tmp_path):
    work = tmp_path / "demo"
    cmd = [sys.executable, "-m", "kidconsole", "demo", "--headless", "--quick", "--work", str(work)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1400,
                          env={**os.environ, "COLUMNS": "160"})
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]

    base = json.loads(next((work / "base").glob("*/base.json")).read_text())
    runs = sorted(p for p in (work / "runs").glob("*/*") if (p / "status.json").exists())
    assert [p.name for p in runs] == ["lora-r4", "lora-r8"]
    for run in runs:
        status = json.loads((run / "status.json").read_text())
        assert status["state"] == "finished"
        tests = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if '"test"' in line]
        assert tests and tests[-1]["per"] < base["child_per"]       # the exit code's rule, from the run itself
        assert (run / "predictions.jsonl").exists()
    # the printed figures are the runs' own
    line = next(ln for ln in out.splitlines() if "base (trained on adults)" in ln)
    assert f"{100 * base['adult_per']:.1f}%" in line and f"{100 * base['child_per']:.1f}%" in line
    for run in runs:
        per = [json.loads(ln) for ln in (run / "events.jsonl").read_text().splitlines() if '"test"' in ln][-1]["per"]
        line = next(ln for ln in out.splitlines() if f"{run.name} (LoRA on children)" in ln)
        assert f"{100 * per:.1f}%" in line and f"{per / base['child_per']:.2f}x" in line
    assert "PER by age group" in out and "PER by SNR" in out and "lora-r8 vs lora-r4" in out
    assert "every fine-tuned run beats the base model" in out

    # it ends with the better run exported to ONNX fp32 and INT8, each scored on the children's test split
    best = min(runs, key=lambda r: [json.loads(ln) for ln in (r / "events.jsonl").read_text().splitlines()
                                    if '"test"' in ln][-1]["per"])
    for kind in ("torch-fp32", "onnx-fp32", "onnx-int8"):
        assert json.loads((best / "exports" / kind / "status.json").read_text())["state"] == "finished"
        assert json.loads((best / "exports" / kind / "export.json").read_text())["n"] == tests[-1]["n"]
    assert f"exports of {best.name}" in out and "INT8 vs PyTorch fp32: PER" in out

    # a second demo reuses the corpus and the base model, and launches two new runs
    again = subprocess.run(cmd + ["--no-export"], cwd=REPO, capture_output=True, text=True, timeout=1400,
                           env={**os.environ, "COLUMNS": "160"})
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert "corpus reused" in again.stdout and "base model reused" in again.stdout
    assert len([p for p in (work / "runs").glob("*/*") if (p / "status.json").exists()]) == 4
