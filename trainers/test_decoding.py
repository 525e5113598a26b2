"""How a test evaluation decodes: a run config's ``decode`` section made into a decoder.

``greedy`` (the default) needs nothing. ``beam`` with ``lm: train`` first builds a phone LM from the
run's train manifests into ``RUN/exports/lm/phones.arpa`` (kidconsole.phone_lm), so the LM travels with
the run's exports; with ``tune_lm_weights`` each weight is tried on the validation sample (one forward
pass, every weight's beam over its output) and the one with the lowest validation PER decodes the
test. The test manifest is never used to choose: a validation manifest that is the test manifest is
refused. The trainer's final test (trainers/loop.py) and ``trainers.score`` call ``test_decoder``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from kidconsole import rundir
from kidconsole.decoding import BEAM, DecoderOptions
from kidconsole.errors import KidconsoleError
from kidconsole.metrics import count_errors, phone_tokens
from trainers.decode import build_decoder


def prepare_lm(cfg, run_dir: Path, *, accelerator=None, log: Callable[[str], None] = print) -> str | None:
    """The LM file the ``decode`` section names, built first when it says ``train``."""
    d = cfg.decode
    if d.decoder != BEAM or d.lm is None:
        return None
    if d.lm != "train":
        return d.lm
    from kidconsole.phone_lm import build_phone_lm

    out = Path(run_dir) / rundir.EXPORTS / rundir.PHONE_LM
    if accelerator is None or accelerator.is_main_process:
        sources = list(dict.fromkeys(path for p in cfg.phases for path, _ in cfg.train_manifests(p)))
        info = build_phone_lm(sources, out, order=d.lm_order)
        log(f"phone LM: order {info.order}, {info.sentences} utterances ({info.tokens} phones) of the train "
            f"manifests -> {out}" + (f"; {info.skipped} rows skipped" if info.skipped else ""))
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return str(out)


@torch.no_grad()
def tune_lm_weight(forward, loader, refs_by_id: dict[str, str], base: DecoderOptions, weights: list[float],
                   vocab: dict[str, int], inverse_vocab: dict[int, str], *, accelerator=None) -> dict[float, float]:
    """Validation PER of each LM weight (one forward pass; every weight's beam decodes its output). Each
    process decodes its share; the error counts are summed over processes, so all choose alike."""
    decoders = {w: build_decoder(DecoderOptions(BEAM, beam=base.beam, lm=base.lm, lm_weight=w), vocab) for w in weights}
    refs, hyps = [], {w: [] for w in weights}
    with forward.evaluating():
        for batch in loader:
            if not len(batch):
                continue
            out = forward(batch)
            refs += [phone_tokens(refs_by_id[i]) for i in batch.ids]
            for w, dec in decoders.items():
                hyps[w] += [phone_tokens(d.phones(inverse_vocab)) for d in dec(out.logits, out.frames)]
    counts = torch.tensor([[c.substitutions + c.deletions + c.insertions, c.n_ref]
                           for c in (count_errors(refs, hyps[w]) for w in weights)], dtype=torch.float64)
    if accelerator is not None and accelerator.num_processes > 1:
        counts = accelerator.reduce(counts.to(accelerator.device), "sum").cpu()
    return {w: float(e / n) if n else float("nan") for w, (e, n) in zip(weights, counts.tolist())}


def test_decoder(cfg, run_dir: Path, forward, vocab: dict[str, int], *, valid_rows=None, settings=None,
                 accelerator=None, log: Callable[[str], None] = print):
    """(decoder, what the test event records of it) for the run config ``cfg``: (None, None) for greedy."""
    from trainers.evaluate import eval_loader

    d = cfg.decode
    if d.decoder != BEAM:
        return None, None
    lm = prepare_lm(cfg, run_dir, accelerator=accelerator, log=log)
    weight = d.lm_weight
    record: dict = {}
    inverse = {i: t for t, i in vocab.items()}
    if lm and d.tune_lm_weights:
        if cfg.data.test_manifest and Path(cfg.data.valid_manifest).resolve() == Path(cfg.data.test_manifest).resolve():
            raise KidconsoleError(f"decode.tune_lm_weights: the validation manifest is the test manifest "
                                  f"({cfg.data.test_manifest}); the LM weight is never tuned on test: give a "
                                  f"validation manifest of its own")
        if not valid_rows:
            raise KidconsoleError("decode.tune_lm_weights: no validation utterances to tune the LM weight on")
        rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
        refs = {r.id: " ".join(r.phones.split()) for r in valid_rows}
        pers = tune_lm_weight(forward, eval_loader(valid_rows, settings, forward, rank, world, cfg.data.valid_manifest),
                              refs, DecoderOptions(BEAM, beam=d.beam, lm=lm), list(dict.fromkeys(d.tune_lm_weights)),
                              vocab, inverse, accelerator=accelerator)
        weight = min(pers, key=lambda w: (pers[w], w))  # a tie goes to the lighter LM
        record["lm_weight_per"] = {f"{w:g}": round(p, 6) for w, p in pers.items()}
        log("LM weight on the validation sample: " + ", ".join(f"{w:g}: PER {p:.4f}" for w, p in pers.items())
            + f"; test decoded with {weight:g}")
    options = DecoderOptions(BEAM, beam=d.beam, lm=lm, lm_weight=weight)
    record.update(decoder=options.label(), lm=lm)
    return build_decoder(options, vocab), record
