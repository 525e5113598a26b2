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
    from trainers.session import Session

    session = Session(rundir.TRAINER, args.run_dir)
    cfg = session.load(lambda: load_config(args.config, args.set))
    if cfg is None:
        return 1

    import torch
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import set_seed

    from trainers.loop import BadDataError, NonFiniteError, Trainer
    from trainers.model import HEAD_TRAINED, configure, load_base, report_base

    # frozen weights and the unused mask embedding would trip DDP's unused-parameter check
    ddp = DistributedDataParallelKwargs(find_unused_parameters=not cfg.lora.enabled
                                        or cfg.model.layerdrop > 0)
    # several processes without a GPU: accelerate would give each one a world of its own (each "rank 0",
    # all writing the same run directory) unless told to run on the CPU, where it joins them over gloo
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    acc = Accelerator(mixed_precision=cfg.train.mixed_precision, kwargs_handlers=[ddp],
                      cpu=launched > 1 and not torch.cuda.is_available())
    if acc.num_processes != launched:  # never let lone "rank 0"s race on one run directory
        return session.fail_early(f"launched as {launched} processes, but accelerate joined {acc.num_processes} "
                                  f"({acc.distributed_type.value})", write=int(os.environ.get("RANK", "0")) == 0)
    session.open(acc.is_main_process, cfg.train.stop_timeout, acc.print)
    run_dir, rep = session.run_dir, session.rep
    if cfg.report_to and rep.active:
        from kidconsole.mirror import Mirror

        rep.mirror = Mirror.open(run_dir, cfg.report_to, cfg, name=cfg.name, warn=acc.print)

    def train() -> tuple[str, str]:
        session.begin(dump_config(cfg), cfg.name, rundir.STARTING)
        set_seed(cfg.seed)
        base = load_base(cfg.model, cfg.data.sample_rate)
        report_base(base, rep, acc.print)
        model = configure(base.model, cfg.model, cfg.lora, base.head)
        trainer = Trainer(cfg, run_dir, acc, model, base.processor, base.head == HEAD_TRAINED, rep, session.stop)
        newest = None if args.fresh else rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
        if args.resume and newest is None:
            raise KidconsoleError(f"--resume: {run_dir / rundir.CHECKPOINTS} holds no complete checkpoint")
        if newest is not None:
            newest = trainer.resume(run_dir / rundir.CHECKPOINTS)  # the newest that loads
            acc.print(f"resuming from {newest}")
        rep.step = trainer.state.step
        rep.start_heartbeat(cfg.train.heartbeat_seconds)
        final = trainer.run(str(newest) if newest else None)
        return final, session.stop_reason() if final == rundir.STOPPED else "all phases done"

    return session.run(train, errors=(BadDataError, NonFiniteError))


if __name__ == "__main__":
    sys.exit(main())
