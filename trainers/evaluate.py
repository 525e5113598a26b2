"""Evaluation on a fixed sample: length-sorted batches, greedy CTC decoding, PER / CER / WER.

Each process decodes its share; the hypotheses are gathered so that every
process computes the same metrics (early stopping decides the same way
everywhere).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from kidconsole.metrics import count_errors, error_rates, phone_tokens, word_tokens
from trainers.decode import greedy_ids, ids_to_phones
from trainers.model import unwrap_base


@dataclass
class EvalResult:
    loss: float
    per: float
    cer: float | None
    wer: float
    n: int
    seconds: float
    ids: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    hyps: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    aborted: bool = False

    def metric(self, name: str) -> float | None:
        return getattr(self, name)


def rates(refs: list[str], hyps: list[str]) -> dict[str, float | None]:
    try:
        return error_rates(refs, hyps)
    except ImportError:  # the Hangul composer (for CER) is not installed: PER and WER still count
        return {"per": count_errors([phone_tokens(r) for r in refs], [phone_tokens(h) for h in hyps]).rate,
                "cer": None,
                "wer": count_errors([word_tokens(r) for r in refs], [word_tokens(h) for h in hyps]).rate}


@torch.no_grad()
def evaluate(model, loader, accelerator, inverse_vocab: dict[int, str], refs_by_id: dict[str, str],
             should_stop=lambda: False) -> EvalResult:
    """Loss and error rates over ``loader`` (this process's share of the sample)."""
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    base = unwrap_base(accelerator.unwrap_model(model))
    # loss sums stay on the device: the decode's copy of the best ids is a batch's only host sync
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    n_loss = torch.zeros((), dtype=torch.long, device=accelerator.device)
    ids, hyps, bad = [], [], []
    aborted = False
    for batch in loader:
        if should_stop():
            aborted = True
            break
        bad += batch.bad
        if not len(batch):
            continue
        with accelerator.autocast():
            out = base(**batch.inputs(accelerator.device, non_blocking=True))
        finite = torch.isfinite(out.loss)
        loss_sum += torch.where(finite, out.loss.double() * len(batch), 0.0)
        n_loss += finite.long() * len(batch)
        frames = base._get_feat_extract_output_lengths(batch.lengths)  # on the host: no sync
        hyps += [ids_to_phones(seq, inverse_vocab) for seq in greedy_ids(out.logits, frames)]
        ids += batch.ids
    if was_training:
        model.train()
    loss_sum, n_loss = loss_sum.item(), int(n_loss.item())
    aborted = bool(accelerator.reduce(torch.tensor(int(aborted), device=accelerator.device), "sum").item())
    if aborted:
        return EvalResult(float("nan"), float("nan"), None, float("nan"), 0, time.perf_counter() - t0, aborted=True)
    from accelerate.utils import gather_object

    parts = gather_object([(ids, hyps, bad, loss_sum, n_loss)]) if accelerator.num_processes > 1 \
        else [(ids, hyps, bad, loss_sum, n_loss)]
    all_ids, all_hyps, all_bad, total, count = [], [], [], 0.0, 0
    for p_ids, p_hyps, p_bad, p_loss, p_n in parts:
        all_ids += p_ids
        all_hyps += p_hyps
        all_bad += p_bad
        total += p_loss
        count += p_n
    refs = [refs_by_id[i] for i in all_ids]
    r = rates(refs, all_hyps) if refs else {"per": float("nan"), "cer": None, "wer": float("nan")}
    return EvalResult(loss=total / count if count else float("nan"), per=r["per"], cer=r["cer"], wer=r["wer"],
                      n=len(all_ids), seconds=time.perf_counter() - t0, ids=all_ids, refs=refs, hyps=all_hyps,
                      bad=all_bad)
