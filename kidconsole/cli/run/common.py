"""What the `run` actions share: the runs roots, RUN resolved to its directory, GPU lists, ages and numbers."""

from __future__ import annotations

from pathlib import Path

from kidconsole.cli import default_runs_roots


def wants_queue(values: list[str] | None) -> bool:
    """``--gpus auto``: queue the run until GPUs (or a CPU slot) are free."""
    return [v.strip().lower() for v in values or []] == ["auto"]


def gpu_indices(values: list[str] | None) -> list[int]:
    from kidconsole.errors import KidconsoleError

    out = []
    for v in values or []:
        for part in v.split(","):
            part = part.strip()
            if part.lower() == "cpu" or not part:
                continue
            if not part.isdigit():
                raise KidconsoleError(f"--gpus {v}: expected GPU indices like 0 or 0,1 (or cpu)")
            out.append(int(part))
    return out


def runs_roots(args) -> list[str]:
    return args.runs or default_runs_roots()


def resolve_run(args) -> Path:
    """RUN as a path to a run directory, or a run name under the runs roots."""
    from kidconsole.errors import KidconsoleError
    from kidconsole.runs.discover import find_runs, is_run_dir

    p = Path(args.run)
    if p.is_dir() and is_run_dir(p):
        return p
    matches = [r for r in find_runs(runs_roots(args)) if r.name == args.run]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise KidconsoleError(f"run {args.run!r}: no such run directory, and no run of that name under "
                              f"{', '.join(runs_roots(args))}")
    raise KidconsoleError(f"run {args.run!r}: several runs of that name: {', '.join(map(str, matches))}")


def age(seconds: float | None) -> str:
    """12s, 5m, 3h20m, 2d4h."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def resolve_runs(args, names: list[str]) -> list[Path]:
    out = []
    for name in names:
        args.run = name
        out.append(resolve_run(args))
    return out
