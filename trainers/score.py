"""Evaluate an existing model on a manifest, without training: a run that only tests.

``python -m trainers.score --config CONFIG --run-dir RUN_DIR [--set key=value ...]``
(the launcher's calling convention: ``launch_run(..., trainer_module="trainers.score")``)
or ``python -m trainers.score --model DIR --manifest M --run-dir RUN_DIR [--base BASE]``.

It loads ``model.base`` as it is (no LoRA, no training; a saved CTC model such as a Hugging Face Trainer's
``checkpoint-N``, or a PEFT adapter merged into its base), decodes
``data.test_manifest`` with the trainer's own test evaluation and writes a
complete run directory: ``predictions.jsonl``, a ``test`` event, an ``end``
event and status ``finished``. So a base model's score is a run like any
other: the console lists it and ``kidconsole report RUN --vs BASELINE``
compares against it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kidconsole.decoding import BEAM, add_decoder_arguments

# what a scoring run needs of a run config when none is given (--model/--manifest)
_MINIMAL = {"model": {"start": "ctc"}, "lora": {"enabled": False},
            "data": {"num_workers": 1}, "phases": [{"name": "score", "epochs": 1}]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m trainers.score", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="the run directory to write")
    ap.add_argument("--config", help="run config (YAML): model.base and data.test_manifest are used")
    ap.add_argument("--model", help="model folder (instead of --config): a saved CTC model (a Hugging Face Trainer's "
                    "checkpoint-N or final model too) or a PEFT adapter (adapter_config.json)")
    ap.add_argument("--base", help="a PEFT adapter's base model, where its adapter_config.json names one that is "
                    "not here")
    ap.add_argument("--manifest", help="manifest to score (instead of --config)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    ap.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)  # the launcher may pass it
    ap.add_argument("--valid-manifest", metavar="M", help="with --model/--manifest: where --tune-lm-weights tunes "
                    "(never the test manifest)")
    ap.add_argument("--tune-lm-weights", metavar="W1,W2,...", help="LM weights tried on the validation manifest; "
                    "the best decodes the test")
    add_decoder_arguments(ap, nbest=False)
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
        raw["data"].update(train_manifest=args.manifest, valid_manifest=args.valid_manifest or args.manifest,
                           test_manifest=args.manifest)
        cfg = resolve_config(raw, "trainers.score", Path.cwd())
    cfg.lora.enabled = False  # score the model as it is
    if args.decoder == BEAM:  # the flags win over the config's decode section
        weights = [float(w) for w in args.tune_lm_weights.split(",")] if args.tune_lm_weights else []
        cfg.decode = type(cfg.decode).model_validate(
            {"decoder": BEAM, "beam": args.beam, "lm": str(Path(args.lm).resolve()) if args.lm else None,
             "lm_weight": args.lm_weight, "tune_lm_weights": weights}, context={"check_paths": False})
    if not cfg.data.test_manifest:
        from kidconsole.errors import KidconsoleError

        raise KidconsoleError(f"{args.config}: data.test_manifest: required to score a model")
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kidconsole import rundir
    from kidconsole.config import dump_config
    from kidconsole.errors import KidconsoleError
    from trainers.session import Session

    session = Session(rundir.SCORER, args.run_dir)
    session.run_dir.mkdir(parents=True, exist_ok=True)
    cfg = session.load(lambda: load_score_config(args))
    if cfg is None:
        return 1

    from accelerate import Accelerator

    from kidconsole.phonemes import vocab
    from trainers.data import fixed_sample, load_rows
    from trainers.evaluate import EvalSettings, TorchForward, score_manifest
    from trainers.model import load_model_folder, report_base
    from trainers.test_decoding import test_decoder

    acc = Accelerator()
    session.open(acc.is_main_process, cfg.train.stop_timeout, acc.print)

    def score() -> tuple[str, str]:
        session.begin(dump_config(cfg), cfg.name, rundir.EVALUATING, step=0, total_steps=0)
        if cfg.model.start != "ctc":
            raise KidconsoleError(f"model.base {cfg.model.base}: scoring needs a CTC model with its head "
                                  f"(model.start: ctc)")
        # the trainer's own loading: the head mapped by symbol, the checkpoint's preprocessing (an adapter's base)
        base = load_model_folder(cfg.model, cfg.data.sample_rate, base=args.base)
        report_base(base, session.rep, acc.print)
        model = base.model.to(acc.device)
        forward = TorchForward(model, base.processor.feature_extractor, acc)
        session.rep.emit(rundir.EV_START, step=0, resumed_from=None, world_size=acc.num_processes,
                         trainable_params=0, total_params=sum(p.numel() for p in model.parameters()), total_steps=0)
        # the trainer's test evaluation: the same batching, decoding, metrics and predictions.jsonl
        settings = EvalSettings.from_config(cfg)
        valid = fixed_sample(load_rows(cfg.data.valid_manifest, unique=True), cfg.data.valid_utterances, cfg.seed) \
            if cfg.decode.tune_lm_weights else None
        decoder, decoding = test_decoder(cfg, session.run_dir, forward, vocab(), valid_rows=valid, settings=settings,
                                         accelerator=acc, log=acc.print)
        res = score_manifest(forward, cfg.data.test_manifest, settings, session.rep,
                             {i: t for t, i in vocab().items()}, accelerator=acc,
                             should_stop=lambda: session.stopped, log=acc.print, decoder=decoder, decoding=decoding)
        return (rundir.STOPPED, session.stop_reason()) if res.aborted else (rundir.FINISHED, "scored")

    return session.run(score)


if __name__ == "__main__":
    sys.exit(main())
