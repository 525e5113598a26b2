"""Launched in the trainer's place (``kidconsole run launch --trainer gpu_probe``): each process writes
what the launcher gave it (its rank, the process count, the visible GPUs, its arguments) to
RUN_DIR/probe.rank<r>.json and exits 0."""

import json
import os
import sys
from pathlib import Path

run_dir = Path(sys.argv[sys.argv.index("--run-dir") + 1])
rank = os.environ.get("RANK", "0")
seen = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "CUDA_VISIBLE_DEVICES",
                                       "CUDA_DEVICE_ORDER", "ACCELERATE_MIXED_PRECISION")}
(run_dir / f"probe.rank{rank}.json").write_text(json.dumps({"env": seen, "argv": sys.argv[1:]}))
