"""A stand-in trainer that writes the run directory like trainers.train, in milliseconds.

``python -m fake_trainer --config C --run-dir D [--resume]`` (tests put this folder
on PYTHONPATH). Behaviour from the environment:
FAKE_STEPS (total steps, 40), FAKE_STEP_S (seconds per step, 0.02), FAKE_EVAL_EVERY (10),
FAKE_CKPT_EVERY (10), FAKE_CRASH_AT (raise at that step), FAKE_IGNORE_TERM (1: SIGTERM does nothing),
FAKE_ORPHAN (1: start a helper that leaves the process group but keeps the session and sleeps),
FAKE_HANG_AT (at that step, stop advancing while the heartbeat goes on, as a read blocked on a hung
mount leaves the real trainer: same step, same work, a beat every FAKE_BEAT_S, 0.2 s).
On SIGTERM it finishes the step, checkpoints, writes ``stopped`` and exits 0, like the real one.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kidconsole import rundir


def env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def checkpoint(run_dir: Path, step: int, events: rundir.EventWriter) -> None:
    root = run_dir / rundir.CHECKPOINTS
    name = rundir.checkpoint_name(step)
    tmp = rundir.tmp_checkpoint(root, name)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "state.txt").write_text(str(step))
    folder = rundir.seal_checkpoint(tmp, root / name)
    events.emit(rundir.EV_CHECKPOINT, step=step, phase=1, name=name, path=str(folder), best=False, metric=None)


def resume_from(run_dir: Path) -> tuple[int, Path | None]:
    """(step, checkpoint) the run continues from: the trainer's rule, the newest complete checkpoint."""
    newest = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
    return (int((newest / "state.txt").read_text()), newest) if newest else (0, None)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    run_dir = Path(args.run_dir)
    total = int(env("FAKE_STEPS", 40))
    step_s = env("FAKE_STEP_S", 0.02)
    eval_every, ckpt_every = int(env("FAKE_EVAL_EVERY", 10)), int(env("FAKE_CKPT_EVERY", 10))
    crash_at = int(env("FAKE_CRASH_AT", -1))
    hang_at = int(env("FAKE_HANG_AT", -1))

    stop = False

    def on_term(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ.get("FAKE_IGNORE_TERM") == "1" else on_term)
    if os.environ.get("FAKE_ORPHAN") == "1":
        # leaves the process group, keeps the session: only a session-wide stop finds it
        subprocess.Popen([sys.executable, "-c", "import os,time; os.setpgid(0,0); time.sleep(300)"])

    events = rundir.EventWriter(run_dir / rundir.EVENTS)
    step, resumed = resume_from(run_dir) if args.resume else (0, None)
    events.emit(rundir.EV_START, step=step, resumed_from=str(resumed) if resumed else None, world_size=1,
                trainable_params=10, total_params=100, total_steps=total)
    rundir.update_status(run_dir, state=rundir.RUNNING, phase=1, step=step, total_steps=total)
    print(f"fake trainer: from step {step} to {total}", flush=True)
    while step < total:
        time.sleep(step_s)
        step += 1
        if step == crash_at:
            raise RuntimeError(f"fake failure at step {step}")
        events.emit(rundir.EV_TRAIN, step=step, phase=1, epoch=0, loss=1.0 / step, lr=1e-4, grad_norm=1.0,
                    samples_per_s=100.0, samples=step * 4, total_steps=total)
        if step % eval_every == 0:
            events.emit(rundir.EV_EVAL, step=step, phase=1, loss=2.0 / step, per=0.5 / step, cer=0.4, wer=0.6, n=8)
        if step % ckpt_every == 0:
            checkpoint(run_dir, step, events)
        events.emit(rundir.EV_HEARTBEAT, step=step, work=step)
        rundir.update_status(run_dir, step=step)
        while step == hang_at and not stop:  # blocked, the heartbeat going on in place
            time.sleep(env("FAKE_BEAT_S", 0.2))
            events.emit(rundir.EV_HEARTBEAT, step=step, work=step)
            rundir.update_status(run_dir, step=step)
        if stop:
            checkpoint(run_dir, step, events)
            events.emit(rundir.EV_END, step=step, state=rundir.STOPPED, exit_code=0, reason="SIGTERM")
            rundir.update_status(run_dir, state=rundir.STOPPED, exit_code=0, ended_at=time.time())
            print("fake trainer: stopped", flush=True)
            return 0
    events.emit(rundir.EV_END, step=step, state=rundir.FINISHED, exit_code=0, reason="done")
    rundir.update_status(run_dir, state=rundir.FINISHED, exit_code=0, ended_at=time.time())
    print("fake trainer: finished", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
