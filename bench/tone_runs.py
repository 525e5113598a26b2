"""What the training-technique benchmarks share (bench_average, bench_techniques): the tiny base trained on
tones, LoRA runs adapting it, the kidconsole commands they start, and a run's PER against another's
(``kidconsole report RUN --vs OTHER``: the difference and its speaker-bootstrap 95% interval). On the CPU,
one thread per process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
# LoRA as the benchmarks adapt the base: attention and feed-forward of every layer
LORA = {"r": 8, "alpha": 32, "dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "out_proj", "intermediate_dense", "output_dense"]}


def run_python(*argv) -> str:
    """``python ARGV...`` in the repository (``-m kidconsole ...``, ``-m trainers.train ...``); its stdout.
    A failure ends the benchmark with the command's output."""
    done = subprocess.run([sys.executable, *map(str, argv)], cwd=REPO, env=ENV, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def finished(run: Path) -> bool:
    from kidconsole.rundir.files import read_status

    return (run / "status.json").exists() and read_status(run).get("state") == "finished"


def train(root: Path, name: str, cfg: dict) -> Path:
    """A run of ``cfg`` as ``root/runs/NAME`` (its config beside, ``root/NAME.yaml``). A finished run of the
    same config already there (a ``--keep`` folder used again) is kept as it is; any other is replaced."""
    config, text = root / f"{name}.yaml", yaml.safe_dump(cfg)
    run = root / "runs" / name
    if finished(run) and config.exists() and config.read_text(encoding="utf-8") == text:
        return run
    shutil.rmtree(run, ignore_errors=True)  # a run of another config (or unfinished) there: never resumed from
    config.write_text(text, encoding="utf-8")
    run_python("-m", "trainers.train", "--config", config, "--run-dir", run)
    return run


def derive(runs: Path, name: str, *command) -> Path:
    """``kidconsole run average|ensemble ...`` as ``runs/NAME``, unless a finished one is there already."""
    run = runs / name
    if not finished(run):
        run_python("-m", "kidconsole", "run", *command, "--name", name, "--runs-root", runs)
    return run


def data_section(manifests: dict) -> dict:
    """``data`` of a config over manifests by split (``train``, ``valid``, ``test``), batches for tone speech."""
    return {"train_manifest": str(manifests["train"]), "valid_manifest": str(manifests["valid"]),
            "test_manifest": str(manifests["test"]), "max_seconds": 4.0, "batch_seconds": 8.0,
            "max_batch_utterances": 8, "bucket_utterances": 64, "num_workers": 0, "eval_batch_seconds": 40.0}


def pretrained_base(root: Path, seed: int) -> Path:
    """The tiny model (the demo's geometry) fully fine-tuned on tones of 100 ms a phone: a base that
    recognises them (its merged export)."""
    from trainers.tiny import build_tiny, tone_corpus

    tones = tone_corpus(root / "tones-base", n_train=96, n_valid=24, n_test=24, seed=seed)
    init = build_tiny(root / "init", hidden=96, layers=3, heads=4, conv="320x", seed=seed)
    run = train(root, "base", {
        "name": "base", "seed": seed, "model": {"base": str(init), "start": "ctc", "freeze_feature_encoder": False},
        "lora": {"enabled": False}, "data": data_section(tones),
        "train": {"log_every": 10, "eval_every": 100, "keep_last": 1, "heartbeat_seconds": 5.0},
        "phases": [{"name": "base", "epochs": 30, "lr": 5.0e-3, "warmup": 60}]})
    return run / "exports" / "merged"


def scored_per(run: Path) -> float:
    """The run's PER on its test manifest."""
    from kidconsole.report.summary import report_for

    return report_for(run).overall.rate()


def per_vs(run: Path, other: Path, n_boot: int = 1000):
    """The overall PER comparison of ``run`` against ``other`` on their common test utterances (a
    ``kidconsole.report.compare.Delta``: ``rate``, ``delta`` = run − other, ``lo``, ``hi``)."""
    from kidconsole.report.summary import report_for

    rep = report_for(run, other, n_boot=n_boot)
    return next(d for d in rep.comparison.deltas if d.dimension == "all" and d.metric == "per")


def delta_cells(d) -> tuple[str, str]:
    """A comparison's Δ PER and its interval, in points of PER, for a table."""
    return f"{d.delta * 100:+.2f}", f"[{d.lo * 100:+.2f}, {d.hi * 100:+.2f}]"
