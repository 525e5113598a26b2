"""The queue of a runs root: order, the lock, slots taken and released, cancel and move."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.runs import queue
from kidconsole.runs.life import stop as stop_run
from kidconsole.runs.system import GpuSample

from runs_helpers import FAKE, hold_slot, release, wait_for

GIB = 1 << 30


def queue_points(run_config: Path, n: int, prefix: str = "q") -> list:
    return [(run_config, [], f"{prefix}{i}", {}) for i in range(1, n + 1)]


def overlap(runs: list[Path]) -> int:
    """The most runs that were running at one time, from their start and end times."""
    spans = [(rundir.read_status(r)["started_at"], rundir.read_status(r)["ended_at"]) for r in runs]
    return max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)


@pytest.mark.slow
def test_four_runs_on_two_cpu_slots_start_in_order_and_release_their_slots(run_config, tmp_path, fake_env):
    fake_env.setenv("FAKE_STEPS", "20")
    fake_env.setenv("FAKE_STEP_S", "0.1")
    root = tmp_path / "runs"
    queue.set_limits(root, cpu_slots=2)
    runs = queue.launch_queued(queue_points(run_config, 4), runs_root=root, trainer_module=FAKE)

    states = [rundir.read_status(r)["state"] for r in runs]
    assert states[:2] == [rundir.STARTING] * 2 and states[2:] == [rundir.QUEUED] * 2
    assert [rundir.read_status(r)["queue_position"] for r in runs[2:]] == [1, 2]
    assert "a CPU slot (0 of 2 free)" in rundir.read_status(runs[2])["waiting_for"]
    assert queue.read_queue(root)["order"] == ["q3", "q4"]

    # nothing but the runs' own supervisors starts the rest, as each run ends
    wait_for(lambda: all(rundir.read_status(r).get("state") == rundir.FINISHED
                         and rundir.read_status(r).get("exit_code") == 0 for r in runs), timeout=180, every=0.2)
    started = [rundir.read_status(r)["started_at"] for r in runs]
    assert started[2] >= min(rundir.read_status(r)["ended_at"] for r in runs[:2])
    assert started[2] <= started[3]
    assert overlap(runs) == 2
    assert queue.read_queue(root)["order"] == []
    assert all(rundir.read_status(r)["queue_position"] is None for r in runs)


def test_a_held_slot_keeps_runs_queued_and_its_end_starts_the_head(run_config, tmp_path, fake_env):
    root = tmp_path / "runs"
    holder = hold_slot(root)
    runs = queue.launch_queued(queue_points(run_config, 3), runs_root=root, trainer_module=FAKE)
    assert [rundir.read_status(r)["state"] for r in runs] == [rundir.QUEUED] * 3
    assert [rundir.read_status(r)["queue_position"] for r in runs] == [1, 2, 3]
    assert rundir.read_status(runs[1])["waiting_for"].startswith("its turn (1 ahead)")

    assert queue.pump(root) == []  # still held
    release(holder)
    assert queue.pump(root) == [runs[0].resolve()]
    assert rundir.read_status(runs[0])["state"] == rundir.STARTING
    assert [rundir.read_status(r)["queue_position"] for r in runs[1:]] == [1, 2]
    for r in runs[1:]:
        queue.cancel(r)
    wait_for(lambda: rundir.read_status(runs[0]).get("state") == rundir.FINISHED, timeout=60)


def test_move_reorders_and_cancel_takes_a_run_out(run_config, tmp_path, fake_env):
    root = tmp_path / "runs"
    holder = hold_slot(root)
    a, b, c = queue.launch_queued(queue_points(run_config, 3), runs_root=root, trainer_module=FAKE)
    assert queue.move(c, 1) == 1
    assert queue.read_queue(root)["order"] == ["q3", "q1", "q2"]
    assert [rundir.read_status(r)["queue_position"] for r in (c, a, b)] == [1, 2, 3]

    assert queue.cancel(a) == rundir.STOPPED
    assert queue.read_queue(root)["order"] == ["q3", "q2"]
    assert rundir.read_status(b)["queue_position"] == 2
    end = json.loads((a / rundir.EVENTS).read_text().splitlines()[-1])
    assert end["kind"] == rundir.EV_END and end["reason"] == "cancelled while queued"
    with pytest.raises(KidconsoleError, match="not queued"):
        queue.cancel(a)

    assert stop_run(b).state == rundir.STOPPED  # `run stop` on a queued run is a cancel
    assert queue.read_queue(root)["order"] == ["q3"]
    with pytest.raises(KidconsoleError, match="not in the queue"):
        queue.move(b, 1)
    assert queue.cancel(c) == rundir.STOPPED
    release(holder)
    assert queue.pump(root) == [] and queue.read_queue(root)["order"] == []


def test_a_free_gpu_is_neither_held_by_a_run_nor_busy_outside_kidconsole(tmp_path):
    root = tmp_path / "runs"
    gpus = [GpuSample(i, "H", 0.0, 100 << 20, 80 * GIB, 30.0, 50.0) for i in range(4)]
    hold_slot(root, "holder", gpus=[1])
    gpus[2].mem_used = 5 * GIB  # someone outside kidconsole
    slots = queue.free_slots(root, 1, 1024, gpus)
    assert slots.gpus == [0, 3] and slots.held == 1 and slots.busy == 1
    assert not slots.fits(4) and slots.fits(2)
    assert slots.describe(4) == "4 GPUs (2 of 4 free: 1 held by runs, 1 busy outside kidconsole)"
    assert slots.take(2) == [0, 3] and slots.gpus == []


def test_a_broken_queue_file_is_an_error_naming_it(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (root / rundir.QUEUE).write_text('{"order": "q1"}')
    with pytest.raises(KidconsoleError, match=r"queue\.json: order: expected list of strings"):
        queue.pump(root)
    assert (root / rundir.QUEUE).read_text() == '{"order": "q1"}'  # left as it was


RACER = """
import sys, time
from pathlib import Path
from kidconsole.runs.queue import launch_queued
config, root, prefix, go = sys.argv[1:]
while not Path(go).exists():
    time.sleep(0.001)
launch_queued([(config, [], f"{prefix}{i}", {}) for i in range(4)], runs_root=root, trainer_module="fake_trainer")
"""


def test_two_launchers_racing_queue_every_run_once(run_config, tmp_path, fake_env):
    root = tmp_path / "runs"
    holder = hold_slot(root)  # nothing starts: the race is over the queue file alone
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(run_config), str(root), p, str(go)])
              for p in ("a", "b")]
    time.sleep(1.5)  # both are waiting at the start line
    go.touch()
    assert [p.wait(timeout=120) for p in racers] == [0, 0]
    order = queue.read_queue(root)["order"]
    assert sorted(order) == sorted(f"{p}{i}" for p in "ab" for i in range(4))
    assert order[:4] in (["a0", "a1", "a2", "a3"], ["b0", "b1", "b2", "b3"])  # each launcher's runs stay together
    positions = {n: rundir.read_status(root / n)["queue_position"] for n in order}
    assert sorted(positions.values()) == list(range(1, 9))
    assert [positions[n] for n in order] == list(range(1, 9))
    for name in order:
        queue.cancel(root / name)
    release(holder)
    assert not list(root.glob(".*.tmp")) and not list(root.glob(f".{rundir.QUEUE}.*"))
