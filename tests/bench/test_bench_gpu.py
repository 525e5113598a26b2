"""`python -m bench gpu` on a machine without a GPU: a clear skip, and the same code on the tiny model."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU here: run `python -m bench gpu` itself")


def _bench(*args) -> str:
    out = subprocess.run([sys.executable, "-m", "bench", "gpu", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env={"OMP_NUM_THREADS": "1", "COLUMNS": "250", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_bench_gpu_skips_on_the_cpu_saying_why():
    out = _bench()
    assert "skipped: no CUDA GPU here" in " ".join(out.split())


@pytest.mark.slow
def test_bench_gpu_measures_every_part_of_a_step_on_the_tiny_model():
    out = _bench("--cpu-check", "--steps", "1", "--warmup", "0")
    for column in ("it/s", "samples/s", "audio h / GPU-h", "peak GB", "data ms", "forward ms", "backward ms",
                   "optimizer ms"):
        assert column in out
    assert "pilot duration batches" in out and "batch of 8" in out and "5-6 it/s at batch 8" in out
