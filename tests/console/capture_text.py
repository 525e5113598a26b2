"""Print a console screen as text on the recorded runs (the README's capture):
``python tests/console/capture_text.py [--hf] [WIDTH HEIGHT [KEY ...]]``; ``--hf``: a Hugging Face Trainer's
output folder (the recorded ``HF_RUN``) beside one run of ours (README's and docs/console.md's capture)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import RECORDINGS, make_app, wait_for_runs  # noqa: E402

from kidconsole.tui.replay import Replay, replay_all  # noqa: E402


def hf_beside_ours(runs: Path) -> int:
    """The recorded Trainer folder copied (its files new: it reads as training) beside one run of ours replayed."""
    from make_recordings import HF_RUN

    Replay(RECORDINGS / "r16-lr3e-4", runs / "r16-lr3e-4", start=10**9)
    shutil.copytree(RECORDINGS / HF_RUN, runs / HF_RUN, copy_function=shutil.copy)
    return 2


async def capture(width: int, height: int, keys: list[str], hf: bool = False) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        n = hf_beside_ours(runs) if hf else len(replay_all(RECORDINGS, runs, start=10**9))
        os.chdir(tmp)  # a relative runs root keeps the temp path off the screen
        app = make_app(["runs"])
        async with app.run_test(size=(width, height)) as pilot:
            await wait_for_runs(pilot, n)
            if keys:
                await pilot.press(*keys)
            await pilot.pause(0.5)
            return "\n".join(strip.text.rstrip() for strip in app.screen._compositor.render_strips())


if __name__ == "__main__":
    args = sys.argv[1:]
    hf = "--hf" in args
    args = [a for a in args if a != "--hf"]
    w, h = (int(args[0]), int(args[1])) if len(args) > 1 else (80, 24)
    print(asyncio.run(capture(w, h, args[2:], hf)))
