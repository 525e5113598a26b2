"""The console's `e` on a demo run: the report against the base model's score (or another marked run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from kidconsole import rundir


def write_run(root: Path, name: str, test_manifest: str, hyps: list[str]) -> Path:
    """A finished run directory with a test evaluation, as the trainer leaves it."""
    run = root / name
    run.mkdir(parents=True)
    now = time.time()
    (run / rundir.CONFIG).write_text(yaml.safe_dump({  # a resolved config names every manifest
        "name": name, "model": {"base": "/m/base"}, "phases": [{"epochs": 1}],
        "data": {"train_manifest": "/m/train.jsonl", "valid_manifest": "/m/valid.jsonl", "test_manifest": test_manifest}}))
    rundir.update_status(run, name=name, state=rundir.FINISHED, started_at=now - 60, ended_at=now, exit_code=0,
                         step=10, total_steps=10)
    with open(run / rundir.EVENTS, "w") as f:
        for ev in ({"t": now - 60, "kind": "start", "step": 0, "total_steps": 10},
                   {"t": now - 30, "kind": "train", "step": 10, "loss": 1.0, "total_steps": 10},
                   {"t": now - 1, "kind": "test", "step": 10, "per": 0.5, "n": len(hyps)},
                   {"t": now, "kind": "end", "step": 10, "state": "finished", "exit_code": 0}):
            f.write(json.dumps(ev) + "\n")
    with open(run / rundir.PREDICTIONS, "w") as f:
        for i, hyp in enumerate(hyps):
            f.write(json.dumps({"id": f"u{i}", "speaker": f"s{i % 2}", "age": 4 + i, "snr": 20.0, "duration": 1.0,
                                "ref": "A N | I", "hyp": hyp}) + "\n")
    return run


async def wait_views(pilot, n: int) -> None:
    for _ in range(200):
        if len(pilot.app.views) == n:
            return
        await pilot.pause(0.05)
    raise AssertionError(f"the console shows {len(pilot.app.views)} runs, expected {n}")


async def opened_errors(pilot, key):
    from kidconsole.tui.screens.errors import ErrorsScreen

    pilot.app.open_errors(key)
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ErrorsScreen) and screen.report is not None
    return screen


async def test_errors_key_opens_the_run_report_against_the_baseline_of_its_test_set(tmp_path):
    from kidconsole.tui.app import KidConsole

    base = write_run(tmp_path / "base", "baseline", "/m/child_test.jsonl", ["A | I", "N | I", "A"])
    run = write_run(tmp_path / "runs", "lora-r4", "/m/child_test.jsonl", ["A N | I", "A N | I", "A N"])
    write_run(tmp_path / "runs", "base-adults", "/m/adult_test.jsonl", ["A N | I"] * 3)
    app = KidConsole([str(tmp_path / "runs"), str(tmp_path / "base")], baseline=base, interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_views(pilot, 3)
        keys = {v.name: k for k, v in app.views.items()}
        screen = await opened_errors(pilot, keys["lora-r4"])
        assert screen.source == run and screen.reference == base.resolve()
        assert screen.report.name == "lora-r4" and screen.report.comparison.reference == "baseline"
        assert screen.report.comparison.deltas[0].delta < 0  # lora-r4 makes fewer errors: negative
        app.pop_screen()
        assert (await opened_errors(pilot, keys["baseline"])).reference is None       # not against itself
        app.pop_screen()
        assert (await opened_errors(pilot, keys["base-adults"])).reference is None    # another test set
        app.pop_screen()

        app.toggle_mark(keys["base-adults"])  # a marked run on another test set is no reference either
        app.toggle_mark(keys["baseline"])
        screen = await opened_errors(pilot, keys["lora-r4"])
        assert screen.reference == Path(app.views[keys["baseline"]].path)
