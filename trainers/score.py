"""Evaluate an existing model on a manifest, without training: a run that only tests.

``python -m trainers.score --config CONFIG --run-dir RUN_DIR [--set key=value ...]``
(the launcher's calling convention: ``launch_run(..., trainer_module="trainers.score")``)
or ``python -m trainers.score --model DIR --manifest M --run-dir RUN_DIR``.

It loads ``model.base`` as it is (no LoRA, no training), decodes
``data.test_manifest`` with the trainer's own test evaluation and writes a
complete run directory: ``predictions.jsonl``, a ``test`` event, an ``end``
event and status ``finished``. So a base model's score is a run like any
other: the console lists it and ``kidconsole report RUN --vs BASELINE``
compares against it.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

# what a scoring run needs of a run config when none is given (--model/--manifest)
_MINIMAL = {"model": {"start": "ctc"}, "lora": {"enabled": False},
            "data": {"num_workers": 1}, "phases": [{"name": "score", "epochs": 1}]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m trainers.score", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="the run directory to write")
    ap.add_argument("--config", help="run config (YAML): model.base and data.test_manifest are used")
    ap.add_argument("--model", help="model folder (instead of --config)")
    ap.add_argument("--manifest", help="manifest to score (instead of --config)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    ap.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)  # the launcher may pass it
    a = ap.parse_args(argv)
    if not a.config and not (a.model and a.manifest):
        ap.error("give --config, or --model and --manifest")
    return a


def load_score_config(args: argparse.Namespace):
    from kidconsole.config import load_config, resolve_config

    if args.config:
        cfg = load_config(args.config, args.set)
    else:
        raw = {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in _MINIMAL.items()}
        raw["model"]["base"] = args.model
        raw["data"].update(train_manifest=args.manifest, valid_manifest=args.manifest, test_manifest=args.manifest)
        cfg = resolve_config(raw, "trainers.score", Path.cwd())
    cfg.lora.enabled = False  # score the model as it is
    if not cfg.data.test_manifest:
        from kidconsole.errors import KidconsoleError

        raise KidconsoleError(f"{args.config}: data.test_manifest: required to score a model")
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kidconsole import rundir
    from kidconsole.config import dump_config
    from kidconsole.errors import KidconsoleError

    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        cfg = load_score_config(args)
    except KidconsoleError as e:
        print(f"trainers.score: error: {e}", file=sys.stderr)
        rundir.update_status(run_dir, state=rundir.FAILED, error=str(e), ended_at=round(time.time(), 3), exit_code=1)
        return 1

    from accelerate import Accelerator

    from trainers.data import end_workers
    from trainers.loop import Trainer
    from trainers.model import configure, load_base, report_base
    from trainers.report import Reporter
    from trainers.signals import StopRequest
    from trainers.train import one_line

    acc = Accelerator()
    rep = Reporter(run_dir, acc.is_main_process)
    stop = StopRequest(cfg.train.stop_timeout).install()

    def end(state: str, code: int, reason: str, **extra) -> int:
        rep.emit(rundir.EV_END, step=0, state=state, exit_code=code, reason=reason)
        rep.status(state=state, step=0, exit_code=code, ended_at=round(time.time(), 3), **extra)
        rep.close()
        return code

    try:
        if acc.is_main_process:
            if not (run_dir / rundir.CONFIG).exists():
                rundir.atomic_write_text(run_dir / rundir.CONFIG, dump_config(cfg))
            status = rundir.read_status(run_dir)
            fields = {"state": rundir.EVALUATING, "error": None, "exit_code": None, "ended_at": None,
                      "step": 0, "total_steps": 0}
            if "pid" not in status:
                import os

                fields.update(pid=os.getpid(), pgid=os.getpgid(0), started_at=round(time.time(), 3),
                              command=sys.argv, name=cfg.name or run_dir.name)
            rep.status(**fields)
        if cfg.model.start != "ctc":
            raise KidconsoleError(f"model.base {cfg.model.base}: scoring needs a CTC model with its head "
                                  f"(model.start: ctc)")
        # the trainer's own loading: the head mapped by symbol, the checkpoint's preprocessing
        base = load_base(cfg.model, cfg.data.sample_rate)
        report_base(base, rep, acc.print)
        model = configure(base.model, cfg.model, cfg.lora, base.head)
        # the trainer's test evaluation: the same batching, decoding, metrics and predictions.jsonl
        trainer = Trainer(cfg, run_dir, acc, model, base.processor, False, rep, stop)
        rep.emit(rundir.EV_START, step=0, resumed_from=None, world_size=acc.num_processes,
                 trainable_params=0, total_params=trainer.total, total_steps=0)
        trainer.test()
        return end(rundir.FINISHED, 0, "scored")
    except KidconsoleError as e:
        acc.print(f"trainers.score: error: {e}")
        return end(rundir.FAILED, 1, str(e), error=str(e))
    except Exception as e:
        traceback.print_exc()
        line = one_line(e)
        return end(rundir.FAILED, 1, line, error=line)
    finally:
        end_workers()
        stop.uninstall()


if __name__ == "__main__":
    sys.exit(main())
