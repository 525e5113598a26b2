"""Run by the Python of a fresh venv that holds only the built wheel (`pip install kidconsole`, no extra):
the console's first frame on the recorded runs, `run ls`, `report`, `config`, and `--help` of every command,
all without torch. ``python installed_checks.py RECORDINGS WORK``; prints one line per check, exits 1 on the
first that fails. Uses only what the light install has (no pytest)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "torchaudio", "transformers", "peft", "accelerate", "onnxruntime", "fastapi", "mlflow")


def check(what: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail and not ok else ""), flush=True)
    if not ok:
        sys.exit(1)


def cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("kidconsole")  # the installed entry point
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def commands(parser, prefix=()) -> list[tuple[str, ...]]:
    """Every command and action path of the installed parser (``run``, ``run launch``, ``config new`` ...)."""
    import argparse

    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((*prefix, name))
                out += commands(sub, (*prefix, name))
    return out


async def first_frame(roots: list[str]) -> str:
    from kidconsole.tui.app import KidConsole

    app = KidConsole(roots, interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (app.views and all(v.step is not None for v in app.views.values())):
            await pilot.pause(0.1)
        await pilot.pause()
        return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def main(recordings: Path, work: Path) -> int:
    import kidconsole

    check("kidconsole comes from the wheel, not a checkout", "site-packages" in kidconsole.__file__,
          kidconsole.__file__)
    present = [m for m in HEAVY if importlib.util.find_spec(m) is not None]
    check("no heavy package is installed", not present, ", ".join(present))

    from kidconsole.tui.replay import replay_all

    root = work / "runs"
    replay_all(recordings, root, start=10**9)
    names = sorted(p.name for p in recordings.iterdir() if (p / "events.jsonl").exists())
    screen = asyncio.run(first_frame([str(root)]))
    check("the console's first frame shows every recorded run", all(n in screen for n in names), screen)

    done = cli("run", "ls", "--runs", str(root))
    check("run ls lists the recorded runs", done.returncode == 0 and all(n in done.stdout for n in names),
          done.stdout + done.stderr)

    from kidconsole import rundir

    rng = random.Random(0)
    phones = ["G", "N", "A", "O", "I", "U", "EO", "S"]
    rows = []
    for i in range(40):
        ref = " ".join(rng.choice(phones) for _ in range(6))
        hyp = " ".join(p if rng.random() > 0.2 else rng.choice(phones) for p in ref.split())
        rows.append({"id": f"u{i}", "ref": ref, "hyp": hyp, "speaker": f"s{i % 8}", "age": 4 + i % 8,
                     "gender": "MF"[i % 2], "snr": float(i % 40), "duration": 1 + i % 5, "split": "test"})
    rundir.write_rows(root / names[0] / rundir.PREDICTIONS, rundir.PredictionRow, rows)
    done = cli("report", str(root / names[0]), "--format", "md", "--bootstrap", "50")
    check("report renders a run's predictions", done.returncode == 0 and "PER" in done.stdout,
          done.stdout + done.stderr)

    project = work / "project"
    project.mkdir()
    exe = Path(sys.executable).with_name("kidconsole")
    done = subprocess.run([str(exe), "config", "new", "tiny_cpu", "-o", "my.yaml"], cwd=project, capture_output=True,
                          text=True, timeout=60)
    check("config new copies a shipped config out of the wheel", done.returncode == 0
          and "marked EDIT" in done.stdout and (project / "my.yaml").is_file(), done.stdout + done.stderr)

    done = cli("run", "launch", str(project / "my.yaml"))
    check("a heavy command says which extra to install", done.returncode == 2
          and "pip install 'kidconsole[train]'" in done.stderr and "Traceback" not in done.stderr, done.stderr)

    from kidconsole.cli import build_parser

    every = [()] + commands(build_parser())
    for path in every:
        done = cli(*path, "--help")
        check(f"kidconsole {' '.join(path)} --help".replace("  ", " "), done.returncode == 0 and "usage:" in done.stdout,
              done.stderr[-2000:])
    print(f"{len(every)} --help pages, all light", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
