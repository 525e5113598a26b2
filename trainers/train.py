"""Entry point: ``accelerate launch [--cpu | --multi_gpu --num_processes N] -m trainers.train
--config RUN_DIR/config.yaml --run-dir RUN_DIR [--resume | --fresh]``.

Resuming: when ``RUN_DIR/checkpoints`` holds a complete checkpoint, the run
continues from the newest one (same phase, step, data position); ``--resume``
makes that a requirement (an error when there is none), ``--fresh`` ignores
existing checkpoints. Exit codes: 0 finished or stopped on request, 1 failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m trainers.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="run config (YAML)")
    ap.add_argument("--run-dir", required=True, help="the run directory to write")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint (required)")
    group.add_argument("--fresh", action="store_true", help="start over even if checkpoints exist")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kidconsole import rundir
    from kidconsole.config import dump_config, load_config
    from kidconsole.errors import KidconsoleError

    run_dir = Path(args.run_dir).resolve()
    try:
        cfg = load_config(args.config, args.set)
    except KidconsoleError as e:
        print(f"trainers.train: error: {e}", file=sys.stderr)
        rundir.update_status(run_dir, state=rundir.FAILED, error=str(e), ended_at=round(time.time(), 3), exit_code=1)
        return 1

    import torch
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import set_seed

    from trainers.data import end_workers
    from trainers.loop import BadDataError, NonFiniteError, Trainer
    from trainers.model import HEAD_TRAINED, configure, load_base, report_base
    from trainers.report import Reporter
    from trainers.signals import StopRequest

    # frozen weights and the unused mask embedding would trip DDP's unused-parameter check
    ddp = DistributedDataParallelKwargs(find_unused_parameters=not cfg.lora.enabled
                                        or cfg.model.layerdrop > 0)
    # several processes without a GPU: accelerate would give each one a world of its own (each "rank 0",
    # all writing the same run directory) unless told to run on the CPU, where it joins them over gloo
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    acc = Accelerator(mixed_precision=cfg.train.mixed_precision, kwargs_handlers=[ddp],
                      cpu=launched > 1 and not torch.cuda.is_available())
    if acc.num_processes != launched:  # never let lone "rank 0"s race on one run directory
        why = (f"launched as {launched} processes, but accelerate joined {acc.num_processes} "
               f"({acc.distributed_type.value})")
        print(f"trainers.train: error: {why}", file=sys.stderr)
        if int(os.environ.get("RANK", "0")) == 0:
            rundir.update_status(run_dir, state=rundir.FAILED, error=why, ended_at=round(time.time(), 3), exit_code=1)
        return 1
    rep = Reporter(run_dir, acc.is_main_process)
    stop = StopRequest(cfg.train.stop_timeout,
                       on_timeout=lambda why: rep.status(state=rundir.FAILED, error=why, exit_code=1,
                                                         ended_at=round(time.time(), 3))).install()

    def end(state: str, code: int, reason: str, **extra) -> int:
        rep.stop_heartbeat()  # a beat in flight could otherwise land after the final status, with an older step
        step = rep.step
        rep.emit(rundir.EV_END, step=step, state=state, exit_code=code, reason=reason)
        rep.status(state=state, step=step, exit_code=code, ended_at=round(time.time(), 3), **extra)
        rep.close()
        return code

    try:
        if acc.is_main_process:
            if not (run_dir / rundir.CONFIG).exists():  # started by hand: the run dir still describes itself
                rundir.atomic_write_text(run_dir / rundir.CONFIG, dump_config(cfg))
            status = rundir.read_status(run_dir)
            fields = {"state": rundir.STARTING, "error": None, "exit_code": None, "ended_at": None}
            if "pid" not in status:
                fields.update(pid=os.getpid(), pgid=os.getpgid(0), started_at=round(time.time(), 3),
                              command=sys.argv, name=cfg.name or run_dir.name)
            rep.status(**fields)
        set_seed(cfg.seed)
        base = load_base(cfg.model, cfg.data.sample_rate)
        report_base(base, rep, acc.print)
        model = configure(base.model, cfg.model, cfg.lora, base.head)
        trainer = Trainer(cfg, run_dir, acc, model, base.processor, base.head == HEAD_TRAINED, rep, stop)
        newest = None if args.fresh else rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
        if args.resume and newest is None:
            raise KidconsoleError(f"--resume: {run_dir / rundir.CHECKPOINTS} holds no complete checkpoint")
        if newest is not None:
            trainer.resume(newest)
            acc.print(f"resuming from {newest}")
        rep.step = trainer.state["step"]
        rep.start_heartbeat(cfg.train.heartbeat_seconds)
        final = trainer.run(str(newest) if newest else None)
        reason = f"stopped by {stop.signal_name}" if final == rundir.STOPPED else "all phases done"
        return end(final, 0, reason)
    except (KidconsoleError, BadDataError, NonFiniteError) as e:
        acc.print(f"trainers.train: error: {e}")
        return end(rundir.FAILED, 1, str(e), error=str(e))
    except Exception as e:  # the traceback goes to stdout.log, one line to status.json
        traceback.print_exc()
        line = one_line(e)
        return end(rundir.FAILED, 1, line, error=line)
    finally:
        end_workers()  # after the final status: a failure's open loader must not keep the process alive
        stop.uninstall()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def one_line(e: BaseException) -> str:
    """The status line of an unexpected error. A DataLoader worker's arrives as "Caught X in DataLoader
    worker process N." and the worker's traceback: its last line says what went wrong."""
    lines = [ln.strip() for ln in f"{type(e).__name__}: {e}".splitlines() if ln.strip()]
    if len(lines) > 1 and "Original Traceback" in lines[1]:
        return f"{lines[-1]} (in a DataLoader worker)"[:500]
    return lines[0][:500]


if __name__ == "__main__":
    sys.exit(main())
