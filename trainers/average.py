"""Checkpoint averaging: one model from the mean of several checkpoints' weights, scored and exported as a run.

``python -m trainers.average SOURCE_RUN --run-dir OUT --checkpoint P1 --checkpoint P2 ... [--lora deltas|factors]``
(``kidconsole run average`` chooses the checkpoints and starts it).

What is averaged is what the checkpoints hold: the trainable tensors (LoRA and the head, or every unfrozen
weight under full fine-tuning). A LoRA layer's update is ``scale * B @ A``, so the mean of the factors
(``mean(B) @ mean(A)``) is not the mean of the updates. ``deltas`` (the default) averages the updates
exactly, and stays an adapter: stacking the K checkpoints' factors, ``A = [A_1; ...; A_K]`` and
``B = [B_1, ..., B_K] / K``, gives ``B @ A = mean(B_k @ A_k)``, an adapter of rank K*r with alpha K*alpha
(the same scale). ``factors`` averages A and B as they are (rank r; the gap is measured in docs/training.md).

The run directory is written like a trained run's end: config.yaml (the source's, with ``lineage`` and the
adapter's rank), the test evaluation (predictions.jsonl, a ``test`` event), exports/adapter and
exports/merged, status ``finished`` with ``derived`` and ``sources``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LORA_A, LORA_B = ".lora_A.", ".lora_B."
DELTAS, FACTORS = "deltas", "factors"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m trainers.average", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="the run whose checkpoints are averaged")
    ap.add_argument("--run-dir", required=True, help="the run directory to write")
    ap.add_argument("--checkpoint", action="append", required=True, help="a checkpoint folder (repeat: 2 or more)")
    ap.add_argument("--lora", choices=(DELTAS, FACTORS), default=DELTAS, help="how LoRA factors are averaged")
    ap.add_argument("--method", default="", help="how the checkpoints were chosen (recorded in the lineage)")
    return ap.parse_args(argv)


def average_states(states: list[dict], lora: str = DELTAS) -> dict:
    """The average of checkpoint states (same keys, same shapes). ``deltas``: each LoRA pair stacked so that
    B @ A is the mean of the B_k @ A_k (rank K*r); every other tensor, and ``factors``' A and B, the plain
    mean (in float32, cast back)."""
    import torch

    if len(states) < 2:
        raise ValueError("averaging needs at least 2 checkpoints")
    keys = set(states[0])
    for i, s in enumerate(states[1:], 2):
        if set(s) != keys:
            odd = sorted(keys ^ set(s))[:3]
            raise ValueError(f"checkpoint {i} holds other tensors than the first ({', '.join(odd)}): "
                             f"not checkpoints of one run")
    k = len(states)
    out = {}
    for name in sorted(keys):
        ts = [s[name] for s in states]
        if any(t.shape != ts[0].shape for t in ts):
            raise ValueError(f"{name}: shapes differ across checkpoints ({', '.join(str(tuple(t.shape)) for t in ts)})")
        if lora == DELTAS and LORA_A in name:
            out[name] = torch.cat(ts, dim=0)                                   # (K*r, in)
        elif lora == DELTAS and LORA_B in name:
            out[name] = (torch.cat([t.float() for t in ts], dim=1) / k).to(ts[0].dtype)  # (out, K*r)
        else:
            out[name] = (sum(t.float() for t in ts) / k).to(ts[0].dtype)
    return out


def lora_rank(state: dict) -> int | None:
    """A checkpoint's LoRA rank, from its A factors (rows); None without LoRA tensors."""
    ranks = {int(t.shape[0]) for n, t in state.items() if LORA_A in n}
    return max(ranks) if ranks else None


def check_averageable(paths: list[str], states: list[dict], rank: int | None) -> None:
    """Checkpoints that can be averaged into the run's model: the same tensors, and LoRA of the run's rank
    ``rank`` (config.yaml's ``lora.r``); else ``KidconsoleError`` naming each checkpoint (the arithmetic would
    fail on a tensor size, naming none)."""
    from kidconsole.errors import KidconsoleError

    names = [Path(p).name for p in paths]
    keys = set(states[0])
    for name, s in zip(names[1:], states[1:]):
        if set(s) != keys:
            odd = ", ".join(sorted(keys ^ set(s))[:3])
            raise KidconsoleError(f"{name} holds other tensors than {names[0]} ({odd}): not checkpoints of one "
                                  f"model; average checkpoints of one run")
    ranks = [lora_rank(s) for s in states]
    if len(set(ranks)) > 1 or (rank is not None and ranks[0] not in (None, rank)):
        listed = ", ".join(f"{n} (r={r})" for n, r in zip(names, ranks))
        raise KidconsoleError(f"checkpoints of different LoRA ranks cannot be averaged: {listed}; the run's "
                              f"config has lora.r {rank}: choose checkpoints of one rank (--steps)")


def lora_gap(states: list[dict]) -> float:
    """How far the mean of the factors is from the mean of the updates, over every LoRA layer:
    ||mean(B) mean(A) - mean(B A)|| / ||mean(B A)|| (Frobenius norms over every layer; the LoRA scale cancels)."""
    import torch

    num = den = 0.0
    for a_name in (n for n in states[0] if LORA_A in n):
        b_name = a_name.replace(LORA_A, LORA_B)
        k = len(states)
        exact = sum(s[b_name].float() @ s[a_name].float() for s in states) / k
        naive = (sum(s[b_name].float() for s in states) / k) @ (sum(s[a_name].float() for s in states) / k)
        num += float(torch.linalg.norm(naive - exact)) ** 2
        den += float(torch.linalg.norm(exact)) ** 2
    return (num / den) ** 0.5 if den else 0.0


def build_model(cfg):
    """The run's model as its trainer built it (base, head, freezing, LoRA), and its processor."""
    from trainers.model import configure, load_base

    base = load_base(cfg.model, cfg.data.sample_rate)
    return configure(base.model, cfg.model, cfg.lora, base.head), base


def derived_session(prog: str, run_dir: str, load, body) -> int:
    """The skeleton of a run made without training: the config loaded (a failed status when it cannot be),
    an accelerator, then ``body(session, cfg, accelerator)`` run as the session's body."""
    from trainers.session import Session

    session = Session(prog, run_dir)
    session.run_dir.mkdir(parents=True, exist_ok=True)
    cfg = session.load(load)
    if cfg is None:
        return 1
    from accelerate import Accelerator

    acc = Accelerator()
    session.open(acc.is_main_process, cfg.train.stop_timeout, acc.print)

    def run() -> tuple[str, str]:
        return body(session, cfg, acc)

    return session.run(run)


def begin_derived(session, cfg, kind: str, sources: list[str], step: int) -> None:
    from kidconsole import rundir
    from kidconsole.config import dump_config

    session.begin(dump_config(cfg), cfg.name, rundir.EVALUATING, step=step, total_steps=step, derived=kind,
                  sources=sources)
    session.rep.step = step


def score_test(session, cfg, forward, acc):
    """The test evaluation every scoring run shares; None when the config has no test manifest."""
    from kidconsole.phonemes import vocab
    from trainers.evaluate import EvalSettings, score_manifest

    if not cfg.data.test_manifest:
        acc.print("no data.test_manifest: nothing scored")
        return None
    return score_manifest(forward, cfg.data.test_manifest, EvalSettings.from_config(cfg), session.rep,
                          {i: t for t, i in vocab().items()}, step=session.rep.step, accelerator=acc,
                          should_stop=lambda: session.stopped, log=acc.print)


def source_config(source: str, run_dir: str, kind: str, sources: list[str], method: str):
    """The source run's config with this run's name and lineage."""
    from kidconsole import rundir
    from kidconsole.config import load_config

    cfg = load_config(Path(source) / rundir.CONFIG)
    cfg.name = Path(run_dir).name
    cfg.lineage.kind, cfg.lineage.sources, cfg.lineage.method = kind, sources, method or None
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kidconsole import rundir

    paths = [str(Path(p).resolve()) for p in args.checkpoint]
    method = "; ".join(x for x in (args.method, f"LoRA {args.lora}") if x)
    rank = None  # the source config's lora.r, before a deltas average stacks it

    def load():
        from kidconsole.errors import KidconsoleError

        if len(paths) < 2:
            raise KidconsoleError(f"--checkpoint: {len(paths)} given, averaging needs at least 2")
        twice = sorted({p for p in paths if paths.count(p) > 1})
        if twice:  # averaged twice, it would weigh double in the mean
            raise KidconsoleError(f"--checkpoint {', '.join(twice)}: given twice: each checkpoint is averaged once")
        cfg = source_config(args.source, args.run_dir, rundir.AVERAGE, paths, method)
        nonlocal rank
        rank = cfg.lora.r
        if cfg.lora.enabled and args.lora == DELTAS:  # the stacked adapter (see the module's docstring)
            cfg.lora.r, cfg.lora.alpha = cfg.lora.r * len(paths), cfg.lora.alpha * len(paths)
        return cfg

    def body(session, cfg, acc) -> tuple[str, str]:
        from trainers import checkpoint as ckpt
        from trainers.evaluate import TorchForward
        from trainers.export import export_adapter, export_merged
        from trainers.model import count_parameters, report_base

        steps = [ckpt.read_state(p).get("step") or 0 for p in paths]
        begin_derived(session, cfg, rundir.AVERAGE, paths, max(steps))
        states = [ckpt.read_weights(p) for p in paths]
        check_averageable(paths, states, rank if cfg.lora.enabled else None)
        if cfg.lora.enabled:
            acc.print(f"LoRA: mean(B)·mean(A) is {lora_gap(states):.2%} from the mean of the updates B·A "
                      f"({'not used: averaged exactly' if args.lora == DELTAS else 'averaged so'})")
        model, base = build_model(cfg)
        report_base(base, session.rep, acc.print)
        ckpt.load_weights(model, paths[0], average_states(states, args.lora))
        acc.print(f"averaged {len(paths)} checkpoints (steps {', '.join(map(str, steps))}) of {args.source}")
        model = model.to(acc.device)
        trainable, total = count_parameters(model)
        session.rep.emit(rundir.EV_START, step=session.rep.step, resumed_from=None, world_size=acc.num_processes,
                         trainable_params=trainable, total_params=total, total_steps=session.rep.step)
        res = score_test(session, cfg, TorchForward(model, base.processor.feature_extractor, acc), acc)
        if res is not None and res.aborted:
            return rundir.STOPPED, session.stop_reason()
        model = model.cpu()
        if hasattr(model, "peft_config"):
            export_adapter(model, base.processor, session.run_dir)
        export_merged(model, base.processor, session.run_dir)
        return rundir.FINISHED, f"averaged {len(paths)} checkpoints"

    return derived_session(rundir.AVERAGER, args.run_dir, load, body)


if __name__ == "__main__":
    sys.exit(main())
