"""Sweeps: a grid of config overrides, one queued run per point, sharing one sweep id.

``--grid lora.r=16,32 --grid phases.0.lr=5e-4,3e-4`` is four points; each point's
``key=value`` pairs go through the config's ``--set`` machinery, so a key or a value
the schema refuses fails with its name before any run is queued.
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Sequence

from kidconsole import rundir
from kidconsole.errors import KidconsoleError


def parse_grid(grids: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``KEY=V1,V2,...`` each: (key, values), in the order given."""
    out: list[tuple[str, list[str]]] = []
    for g in grids:
        key, sep, values = g.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",")]
        if not sep or not key or not all(vals):
            raise KidconsoleError(f"--grid {g}: expected KEY=V1,V2,... (e.g. lora.r=16,32)")
        if key in (k for k, _ in out):
            raise KidconsoleError(f"--grid {g}: {key} is already varied by another --grid")
        if len(set(vals)) != len(vals):
            raise KidconsoleError(f"--grid {g}: a value is repeated")
        out.append((key, vals))
    if not out:
        raise KidconsoleError("a sweep needs at least one --grid KEY=V1,V2,...")
    return out


def expand_grid(grids: Sequence[str]) -> list[list[str]]:
    """Every point of the grid, as ``key=value`` overrides; the last --grid varies fastest."""
    parsed = parse_grid(grids)
    return [[f"{k}={v}" for k, v in zip((k for k, _ in parsed), combo)]
            for combo in itertools.product(*(vals for _, vals in parsed))]


def sweep_id(config: Path, name: str | None) -> str:
    base = name or re.sub(r"[^\w.+-]+", "-", config.stem).strip("-") or "sweep"
    if not re.fullmatch(r"[\w.+-]+", base):
        raise KidconsoleError(f"sweep name {base!r}: use letters, digits, '.', '_', '+' or '-'")
    return f"{base}-{time.strftime('%Y%m%d-%H%M%S')}"


def launch_sweep(config: str | Path, grids: Sequence[str], *, overrides: Sequence[str] = (), name: str | None = None,
                 gpus_per_run: int = 1, runs_root: str | Path = "runs",
                 trainer_module: str = rundir.TRAINER) -> tuple[str, list[Path]]:
    """Queue one run per grid point (named SWEEP-01, SWEEP-02, ...); returns the sweep id and the runs."""
    from kidconsole.runs.queue import launch_queued

    config = Path(config)
    points = expand_grid(grids)
    sid = sweep_id(config, name)
    runs = launch_queued([(config, [*overrides, *point], f"{sid}-{i:02d}", {"sweep": sid, "sweep_point": point})
                          for i, point in enumerate(points, 1)],
                         gpus_per_run=gpus_per_run, runs_root=runs_root, trainer_module=trainer_module)
    return sid, runs
