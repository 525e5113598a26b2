"""Print a console screen as text on the recorded runs (the README's capture):
``python tests/console/capture_text.py [WIDTH HEIGHT [KEY ...]]``."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import RECORDINGS, make_app, wait_for_runs  # noqa: E402

from kidconsole.tui.replay import replay_all  # noqa: E402


async def capture(width: int, height: int, keys: list[str]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        replay_all(RECORDINGS, Path(tmp) / "runs", start=10**9)
        os.chdir(tmp)  # a relative runs root keeps the temp path off the screen
        app = make_app(["runs"])
        async with app.run_test(size=(width, height)) as pilot:
            await wait_for_runs(pilot, 2)
            if keys:
                await pilot.press(*keys)
            await pilot.pause(0.5)
            return "\n".join(strip.text.rstrip() for strip in app.screen._compositor.render_strips())


if __name__ == "__main__":
    w, h = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (80, 24)
    print(asyncio.run(capture(w, h, sys.argv[3:])))
