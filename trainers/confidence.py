"""How sure a model is of each utterance: CTC confidence, loss against the phones, the greedy decode.

``Scorer`` is what confidence-based selection (trainers/select.py) and pseudo-labelling
(trainers/pseudo.py) share. An utterance's **confidence** is the mean over its frames of the
largest CTC posterior (blank frames included: a model unsure where a phone ends is unsure);
its **phone confidence** is the mean of its decoded phones' confidences (each the posterior of its
phone over the frames of its run; 0 when it decodes to nothing), which blank frames do not dilute: a
model that deletes phones it does not know labels their frames blank with high posterior, so the
frame mean stays high where the phone mean drops or the decode is empty; its **loss**, when it has
reference phones, is the CTC loss over the number of phones (the
length-normalised loss, as ``reduction="mean"`` computes it), None when the phones cannot be
aligned to its frames. Audio is read a batch ahead on threads (soundfile releases the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from kidconsole.errors import KidconsoleError
from kidconsole.metrics import count_errors, phone_tokens
from trainers.batching import plan_sorted
from trainers.data import ctc_feasible
from trainers.decode import greedy_with_confidence
from trainers.transcribe import Item, Skipped, Transcriber
from trainers.waves import load_wave, make_batch


@dataclass
class Score:
    id: str
    confidence: float               # mean per-frame max posterior
    loss: float | None              # CTC loss per reference phone; None without (alignable) phones
    per: float | None               # this utterance's PER against its reference phones
    phones: str                     # the greedy decode
    phone_confidences: list[float]  # each decoded phone's posterior (trainers.decode)
    duration: float                 # seconds, as decoded

    @property
    def mean_phone_confidence(self) -> float:
        return sum(self.phone_confidences) / len(self.phone_confidences) if self.phone_confidences else 0.0

    def record(self) -> dict:
        return {"id": self.id, "confidence": round(self.confidence, 5),
                "phone_confidence": round(self.mean_phone_confidence, 5),
                "loss": None if self.loss is None else round(self.loss, 5),
                "per": None if self.per is None else round(self.per, 5)}


class Scorer:
    """Scores items with one recogniser, batched by duration like ``kidconsole transcribe``."""

    def __init__(self, recogniser, batch_seconds: float = 60.0, max_utterances: int = 64, threads: int = 4):
        self.tr = Transcriber(recogniser, batch_seconds=batch_seconds, max_utterances=max_utterances)
        self.rec = recogniser
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads))

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _load(self, it: Item):
        try:
            w = load_wave(it.audio, self.rec.sample_rate)
            self.tr.check(w.samples, it.audio)
            return w.samples
        except KidconsoleError as e:
            return Skipped(it.id, it.audio, str(e))

    def batches(self, items: Sequence[Item]) -> Iterator[tuple[list[Item], list, list[Skipped]]]:
        """Per batch (by duration): its usable items, their waves, and the items skipped (unreadable, truncated
        or too short audio); the next batch's audio is read while the caller works on this one."""
        usable, durations, skipped = self.tr.headers(list(items))
        if skipped:
            yield [], [], skipped
        plans = plan_sorted(durations, batch_seconds=self.tr.batch_seconds, max_utts=self.tr.max_utterances)
        ahead = None
        for k, plan in enumerate(plans):
            batch_items = [usable[j] for j in plan]
            waves = ahead.result() if ahead is not None else list(self.pool.map(self._load, batch_items))
            if k + 1 < len(plans):  # read the next batch while this one runs
                ahead = self.pool.submit(lambda p=plans[k + 1]: list(self.pool.map(self._load, [usable[j] for j in p])))
            good = [(it, w) for it, w in zip(batch_items, waves) if not isinstance(w, Skipped)]
            yield [it for it, _ in good], [w for _, w in good], [w for w in waves if isinstance(w, Skipped)]

    def score(self, items: Sequence[Item]) -> Iterator[tuple[list[Score], list[Skipped]]]:
        """Per batch: its scores and the items skipped (unreadable, truncated or too short audio)."""
        for good, waves, bad in self.batches(items):
            yield (self._forward(good, waves) if good else []), bad

    @torch.no_grad()
    def _forward(self, items: list[Item], waves: list) -> list[Score]:
        tr, rec = self.tr, self.rec
        batch = make_batch([it.id for it in items], waves, normalize=tr.normalize, padding_value=tr.padding_value,
                           masked=tr.masked)
        with rec.forward.evaluating():
            out = rec.forward(batch)
        logits = out.logits.detach().float()
        frames = out.frames.cpu()
        log_probs = logits.log_softmax(dim=-1)
        best = log_probs.max(dim=-1).values.exp().cpu()
        decoded = greedy_with_confidence(logits, frames)
        losses = self._losses(items, log_probs, frames)
        scores = []
        for j, (it, w, seq) in enumerate(zip(items, waves, decoded)):
            n = int(frames[j])
            phones = " ".join(tr.inverse.get(i, "<unk>") for i, _ in seq)
            per = None
            if it.ref:
                per = count_errors([phone_tokens(it.ref)], [phone_tokens(phones)]).rate
            scores.append(Score(it.id, float(best[j, :n].mean()) if n else 0.0, losses[j], per, phones,
                                [c for _, c in seq], round(len(w) / rec.sample_rate, 3)))
        return scores

    def _losses(self, items: list[Item], log_probs: torch.Tensor, frames: torch.Tensor) -> list[float | None]:
        """CTC loss per reference phone of each item with phones that the vocabulary has and the frames
        can hold; None for the others."""
        vocab = self.rec.vocab
        targets, which = [], []
        for j, it in enumerate(items):
            if not it.ref:
                continue
            try:
                labels = [vocab[p] for p in it.ref.split()]
            except KeyError:
                continue
            if labels and ctc_feasible(int(frames[j]), labels):
                targets.append(labels)
                which.append(j)
        out: list[float | None] = [None] * len(items)
        if not which:
            return out
        lp = log_probs[which].transpose(0, 1)  # frames x batch x vocab, as ctc_loss takes it
        flat = torch.tensor([i for t in targets for i in t], dtype=torch.long, device=lp.device)
        lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
        loss = F.ctc_loss(lp, flat, frames[which].long(), lengths, blank=0, reduction="none", zero_infinity=False)
        for j, v, n in zip(which, loss.cpu().tolist(), lengths.tolist()):
            out[j] = v / n if v == v and v != float("inf") else None
        return out


def run_command(main, name: str) -> None:
    """Exit with ``main()``'s code; an error of the input as ``kidconsole NAME: error: ...`` (code 2)."""
    import sys

    try:
        sys.exit(main())
    except KidconsoleError as e:
        print(f"kidconsole {name}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
