"""Fault injection on the data reads: audio that never ends or never comes.

A FIFO or a device named as audio in a manifest (a read from it blocks for good, or never ends) is refused
by the type of the descriptor before any read and counted as a bad sample. A read that blocks on a regular
file (a hung network mount) holds its DataLoader worker's thread in the kernel; ``hung_read_trainer`` makes
one batch's read block so (on a FIFO, past the type check), and the trainer's main process sees what it sees
of a hung mount: no batch comes. Then a stop still checkpoints, and past ``data.read_timeout`` the run fails
naming the files it waited for. The trainer runs as a process of its own, with a deadline (it hung).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from kidconsole import rundir

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _trainer(config: Path, run: Path, module: str = "trainers.train", env: dict | None = None) -> subprocess.Popen:
    run.mkdir(parents=True, exist_ok=True)
    log = open(run / rundir.STDOUT, "ab")
    return subprocess.Popen([sys.executable, "-m", module, "--config", str(config), "--run-dir", str(run)],
                            cwd=REPO, env={**ENV, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _hung_trainer(config: Path, run: Path, tmp_path: Path) -> subprocess.Popen:
    os.mkfifo(tmp_path / "hung")
    return _trainer(config, run, "hung_read_trainer",
                    {"HUNG_BATCH": "12", "HUNG_FIFO": str(tmp_path / "hung"),
                     "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])})


def _end(proc: subprocess.Popen) -> None:
    """Whatever is left of the trainer's session (a worker blocked on its read) killed."""
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == proc.pid:
                p.kill()
        except (OSError, psutil.Error):
            continue
    proc.wait(timeout=30)


def _config(tmp_path: Path, tiny_run_config, tiny_model, tones, **over) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_run_config(tiny_model, tones, data__test_manifest=None, **over)))
    return path


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_a_device_named_as_audio_is_skipped_and_counted_before_any_read(
        kind, tmp_path, tiny_run_config, tiny_model, tones, rd):
    hung = tmp_path / "hung.wav"
    if kind == "fifo":
        os.mkfifo(hung)  # opening it for reading waits for a writer that never comes
    else:
        hung.symlink_to("/dev/zero")  # never ends
    rows = [json.loads(ln) for ln in tones["train"].read_text().splitlines()]
    rows[3]["audio"] = str(hung)
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _config(tmp_path, tiny_run_config, tiny_model, tones, data__train_manifest=str(manifest),
                     data__num_workers=1, data__max_bad_share=0.2)
    run = tmp_path / "run"
    proc = _trainer(config, run)
    try:
        assert proc.wait(timeout=120) == 0, (run / rundir.STDOUT).read_text()[-3000:]
    finally:
        _end(proc)
    assert rd.status(run)["state"] == "finished"
    bad = [e for e in rd.events(run, "warning") if e["what"] == rundir.BAD_SAMPLE]
    what = "a FIFO" if kind == "fifo" else "a character device"
    assert bad and all(str(hung) in e["message"] and f"{what}, not a regular file" in e["message"] for e in bad), bad


def test_audio_readers_refuse_a_fifo_at_once(tmp_path):
    """The corpus indexer's header read and transcription's wave load too (each once opened the FIFO)."""
    fifo = tmp_path / "hung.wav"
    os.mkfifo(fifo)
    code = (f"from kidconsole.audio import audio_info\nfrom trainers.waves import load_wave\n"
            f"for read in (lambda: audio_info({str(fifo)!r}), lambda: load_wave({str(fifo)!r}, 16000)):\n"
            f"    try:\n        read()\n    except Exception as e:\n        print(type(e).__name__, e)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(ln.startswith("KidconsoleError") and "a FIFO, not a regular file" in ln
                                   for ln in lines), done.stdout + done.stderr[-2000:]


def _stuck(run: Path, rd) -> int:
    """Once the trainer has stepped, the step it stays at (no step for 3 s)."""
    rd.wait_for(lambda: (rundir.read_status(run).get("step") or 0) >= 2, 120, "the first steps")
    last, still_since = None, time.monotonic()
    while time.monotonic() - still_since < 3.0:
        step = rundir.read_status(run).get("step")
        if step != last:
            last, still_since = step, time.monotonic()
        time.sleep(0.05)
    return last


def _long_epoch(tmp_path, tiny_run_config, tiny_model, tones, **over) -> Path:
    # one epoch of 400 utterances in batches of 2: the blocked batch comes before its end
    return _config(tmp_path, tiny_run_config, tiny_model, tones, data__num_workers=1, data__max_batch_utterances=2,
                   train__eval_every=10_000, train__log_every=1, train__stop_timeout=60.0,
                   phases=[{"name": "only", "epochs": 1, "lr": 3.0e-3, "warmup": 1,
                            "manifests": [{"path": str(tones["train"]), "weight": 10}]}], **over)


@pytest.mark.slow
def test_a_stop_while_a_read_is_blocked_checkpoints_and_stops(tmp_path, tiny_run_config, tiny_model, tones, rd):
    config = _long_epoch(tmp_path, tiny_run_config, tiny_model, tones)
    run = tmp_path / "run"
    proc = _hung_trainer(config, run, tmp_path)
    try:
        step = _stuck(run, rd)
        assert step < 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0, (run / rundir.STDOUT).read_text()[-3000:]
    finally:
        _end(proc)
    status = rd.status(run)
    assert status["state"] == "stopped", status
    newest = rundir.newest_checkpoint(run / rundir.CHECKPOINTS)
    assert newest is not None and rundir.checkpoint_step(newest.name) == status["step"] >= step
    assert [e["state"] for e in rd.events(run, "end")] == ["stopped"]


@pytest.mark.slow
def test_a_read_blocked_past_the_bound_fails_the_run_naming_the_files(tmp_path, tiny_run_config, tiny_model, tones,
                                                                     rd):
    config = _long_epoch(tmp_path, tiny_run_config, tiny_model, tones, data__read_timeout=3.0)
    run = tmp_path / "run"
    proc = _hung_trainer(config, run, tmp_path)
    try:
        assert proc.wait(timeout=120) != 0
    finally:
        _end(proc)
    status = rd.status(run)
    assert status["state"] == "failed", status
    assert "for 3 s (data.read_timeout)" in status["error"] and "batch 12 of" in status["error"], status
    assert str(tones["train"].parent / "wav") in status["error"], status
