"""Ensembles: the test manifest decoded from the posteriors of several models averaged frame by frame.

``python -m trainers.ensemble --run-dir OUT (--run RUN ... | --source RUN --checkpoint P ...)``
(``kidconsole run ensemble`` starts it): each ``--run`` contributes its exported model (exports/merged),
each ``--checkpoint`` a checkpoint of the ``--source`` run. Every model must share the phone set (our
inventory, in its order), the feature extractor and the frame rate; the per-frame softmax posteriors are
averaged and decoded greedily, so the hypothesis is the argmax of the mean probability. The config (data
settings and test manifest) is the first run's (or the source's), with ``lineage``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch

from trainers.evaluate import Output


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m trainers.ensemble", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="the run directory to write")
    ap.add_argument("--run", action="append", default=[], help="a finished run (its exports/merged); repeat")
    ap.add_argument("--source", help="the run whose --checkpoint folders are ensembled")
    ap.add_argument("--checkpoint", action="append", default=[], help="a checkpoint folder of --source; repeat")
    ap.add_argument("--method", default="", help="how the members were chosen (recorded in the lineage)")
    a = ap.parse_args(argv)
    if bool(a.run) == bool(a.checkpoint) or (a.checkpoint and not a.source):
        ap.error("give --run RUN (2 or more), or --source RUN with --checkpoint P (2 or more)")
    return a


class EnsembleForward:
    """Several forwards as one: the log of their mean posteriors (no loss: it is no model's)."""

    def __init__(self, forwards: list):
        self.forwards = forwards
        first = forwards[0]
        self.config, self.feature_extractor, self.device = first.config, first.feature_extractor, first.device

    def __call__(self, batch) -> Output:
        outs = [f(batch) for f in self.forwards]
        shapes = {tuple(o.logits.shape) for o in outs}
        if len(shapes) > 1:
            raise ValueError(f"the members' outputs differ in shape ({', '.join(map(str, sorted(shapes)))}): "
                             f"they do not share a frame rate and phone set")
        probs = torch.stack([o.logits.float().softmax(-1) for o in outs]).mean(0)
        return Output(probs.clamp_min(1e-30).log(), outs[0].frames, None)

    @contextlib.contextmanager
    def evaluating(self):
        with contextlib.ExitStack() as stack:
            for f in self.forwards:
                stack.enter_context(f.evaluating())
            yield


def _same_inputs(members: list[tuple[str, object]]) -> None:
    """Every member reads the same features and writes our phone set."""
    from kidconsole.errors import KidconsoleError
    from kidconsole.phonemes import vocab

    ours = len(vocab())
    first_name, first_fe = members[0][0], members[0][1].feature_extractor.to_dict()
    for name, fwd in members:
        if fwd.config.vocab_size != ours:
            raise KidconsoleError(f"{name}: its CTC head has {fwd.config.vocab_size} outputs, our phone set "
                                  f"{ours}: an ensemble needs one phone set")
        fe = fwd.feature_extractor.to_dict()
        diff = sorted(k for k in set(fe) | set(first_fe) if k != "processor_class" and fe.get(k) != first_fe.get(k))
        if diff:
            raise KidconsoleError(f"{name}: its feature extractor differs from {first_name}'s ({', '.join(diff)}): "
                                  f"the members must read the same features")


def _check_vocab(folder: Path) -> None:
    from kidconsole.errors import KidconsoleError
    from kidconsole.phonemes import vocab

    path = folder / "vocab.json"
    try:
        theirs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KidconsoleError(f"{path}: cannot read the model's phone set ({e})") from e
    if theirs != vocab():
        raise KidconsoleError(f"{path}: another phone set (or order) than ours: an ensemble needs one phone set")


def run_member(run: Path, acc):
    """A finished run's exported model as a forward."""
    from transformers import AutoModelForCTC, AutoProcessor

    from kidconsole import rundir
    from kidconsole.errors import KidconsoleError
    from trainers.evaluate import TorchForward
    from trainers.model import check_weights

    folder = run / rundir.EXPORTS / "merged"
    if not (folder / "config.json").exists():
        raise KidconsoleError(f"{run}: no exports/merged: only a finished run can join an ensemble")
    _check_vocab(folder)
    check_weights(folder, f"{run}: the ensemble member {folder}", "export the run again, or leave it out")
    model = AutoModelForCTC.from_pretrained(str(folder)).to(acc.device)
    processor = AutoProcessor.from_pretrained(str(folder))
    return TorchForward(model, processor.feature_extractor, acc)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kidconsole import rundir
    from trainers.average import begin_derived, derived_session, score_test, source_config

    runs = [Path(r).resolve() for r in args.run]
    sources = [str(p) for p in runs] or [str(Path(p).resolve()) for p in args.checkpoint]
    method = "; ".join(x for x in (args.method, "mean of the members' per-frame posteriors") if x)

    def load():
        from kidconsole.errors import KidconsoleError

        if len(sources) < 2:
            raise KidconsoleError(f"an ensemble needs at least 2 members, {len(sources)} given")
        return source_config(str(runs[0]) if runs else args.source, args.run_dir, rundir.ENSEMBLE, sources, method)

    def body(session, cfg, acc) -> tuple[str, str]:
        from trainers import checkpoint as ckpt
        from trainers.average import build_model
        from trainers.evaluate import TorchForward

        if runs:
            step = max(int(rundir.read_status(r).get("step") or 0) for r in runs)
        else:
            step = max(int(ckpt.read_state(p).get("step") or 0) for p in sources)
        begin_derived(session, cfg, rundir.ENSEMBLE, sources, step)
        members = []
        for src in sources:
            if runs:
                fwd = run_member(Path(src), acc)
            else:
                model, base = build_model(cfg)
                ckpt.load_weights(model, src)
                fwd = TorchForward(model.to(acc.device), base.processor.feature_extractor, acc)
            members.append((src, fwd))
            acc.print(f"member {len(members)}: {src}")
        _same_inputs(members)
        total = sum(sum(p.numel() for p in f.model.parameters()) for _, f in members)
        session.rep.emit(rundir.EV_START, step=step, resumed_from=None, world_size=acc.num_processes,
                         trainable_params=0, total_params=total, total_steps=step)
        res = score_test(session, cfg, EnsembleForward([f for _, f in members]), acc)
        if res is not None and res.aborted:
            return rundir.STOPPED, session.stop_reason()
        return rundir.FINISHED, f"ensemble of {len(members)} models"

    return derived_session(rundir.ENSEMBLER, args.run_dir, load, body)


if __name__ == "__main__":
    sys.exit(main())
