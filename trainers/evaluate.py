"""Evaluation: length-sorted batches, greedy CTC decoding, PER / CER / WER, and the test scoring.

``evaluate`` decodes a loader with any *forward* (a callable from a batch to
its logits, valid frames and, when it has one, its loss): a PyTorch model
(``TorchForward``) or an ONNX Runtime session (``trainers.onnx``).
``score_manifest`` is the test evaluation every scoring command shares (the
trainer's final test, ``trainers.score``, exports): the same batches, decoding
and metrics, then ``predictions.jsonl`` and a ``test`` event.

Each process decodes its share; the hypotheses are gathered so that every
process computes the same metrics (early stopping decides the same way
everywhere).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

from kidconsole import rundir
from kidconsole.metrics import count_errors, error_rates, phone_tokens, word_tokens
from kidconsole.report.buckets import assign
from trainers.batching import plan_sorted, shard
from trainers.data import BatchStream, load_rows, make_loader, until_stopped
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


class Output(NamedTuple):
    """What a forward gives for a batch."""
    logits: torch.Tensor            # batch x frames x vocab
    frames: torch.Tensor            # valid frames of each utterance (on the host)
    loss: torch.Tensor | None = None


class TorchForward:
    """A Wav2Vec2ForCTC (or its PEFT wrapper, prepared or not) as a forward; under accelerate's autocast when
    an accelerator is given, else in the model's own precision on ``device``."""

    def __init__(self, model, feature_extractor, accelerator=None, device=None):
        self.model, self.acc, self.feature_extractor = model, accelerator, feature_extractor
        self.base = unwrap_base(accelerator.unwrap_model(model) if accelerator is not None else model)
        self.config = self.base.config
        self.device = accelerator.device if accelerator is not None else torch.device(device or "cpu")

    def __call__(self, batch) -> Output:
        with self.acc.autocast() if self.acc is not None else contextlib.nullcontext():
            out = self.base(**batch.inputs(self.device, non_blocking=True))
        return Output(out.logits, self.base._get_feat_extract_output_lengths(batch.lengths), out.loss)

    @contextlib.contextmanager
    def evaluating(self):
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            if was_training:
                self.model.train()


@dataclass(frozen=True)
class EvalSettings:
    """How evaluation batches are made: the data settings of a run config."""
    sample_rate: int = 16000
    max_seconds: float = 20.0
    batch_seconds: float = 320.0
    max_utterances: int = 256
    num_workers: int = 1
    read_timeout: float | None = None  # data.read_timeout: the bound on the wait for a batch

    @classmethod
    def from_config(cls, cfg) -> "EvalSettings":
        d = cfg.data
        return cls(sample_rate=d.sample_rate, max_seconds=d.max_seconds, batch_seconds=d.eval_batch_seconds,
                   max_utterances=d.max_batch_utterances * 4, num_workers=d.num_workers,
                   read_timeout=d.read_timeout)


def eval_loader(rows, settings: EvalSettings, forward, rank: int = 0, world: int = 1, manifest: str = "",
                should_stop: Callable[[], bool] | None = None):
    """All utterances sorted by length, cut by the padded budget; this process's share of them (``manifest``:
    where the rows come from, for an error's message)."""
    batches = plan_sorted([r.duration for r in rows], batch_seconds=settings.batch_seconds,
                          max_utts=settings.max_utterances)
    cfg = forward.config
    stream = BatchStream(rows, shard(batches, rank, world), feature_extractor=forward.feature_extractor,
                         kernels=cfg.conv_kernel, strides=cfg.conv_stride, sample_rate=settings.sample_rate,
                         max_seconds=settings.max_seconds, manifest=manifest)
    return make_loader(stream, settings.num_workers, getattr(forward.device, "type", "cpu") == "cuda",
                       wait_bound=settings.read_timeout, should_stop=should_stop if world == 1 else None)


def rates(refs: list[str], hyps: list[str]) -> dict[str, float | None]:
    try:
        return error_rates(refs, hyps)
    except ImportError:  # the Hangul composer (for CER) is not installed: PER and WER still count
        return {"per": count_errors([phone_tokens(r) for r in refs], [phone_tokens(h) for h in hyps]).rate,
                "cer": None,
                "wer": count_errors([word_tokens(r) for r in refs], [word_tokens(h) for h in hyps]).rate}


@torch.no_grad()
def evaluate(forward, loader, inverse_vocab: dict[int, str], refs_by_id: dict[str, str], *, accelerator=None,
             should_stop: Callable[[], bool] = lambda: False, decoder=None) -> EvalResult:
    """Loss (when the forward gives one) and error rates over ``loader`` (this process's share), decoded
    greedily or by ``decoder`` (trainers.decode.build_decoder)."""
    t0 = time.perf_counter()
    world = accelerator.num_processes if accelerator is not None else 1
    # loss sums stay on the device: the decode's copy of the best ids is a batch's only host sync
    loss_sum = torch.zeros((), dtype=torch.float64, device=forward.device)
    n_loss = torch.zeros((), dtype=torch.long, device=forward.device)
    ids, hyps, bad = [], [], []
    aborted = False
    with forward.evaluating():
        for batch in until_stopped(loader):
            if should_stop():
                aborted = True
                break
            bad += batch.bad
            if not len(batch):
                continue
            out = forward(batch)
            if out.loss is not None:
                finite = torch.isfinite(out.loss)
                loss_sum += torch.where(finite, out.loss.double() * len(batch), 0.0)
                n_loss += finite.long() * len(batch)
            if decoder is None:  # the evaluations during training: the cheapest greedy decode
                hyps += [ids_to_phones(seq, inverse_vocab) for seq in greedy_ids(out.logits, out.frames)]
            else:
                hyps += [d.phones(inverse_vocab) for d in decoder(out.logits, out.frames)]
            ids += batch.ids
    aborted = aborted or should_stop()  # also a stop that came while the loader waited for a batch
    loss_sum, n_loss = loss_sum.item(), int(n_loss.item())
    if world > 1:
        aborted = bool(accelerator.reduce(torch.tensor(int(aborted), device=accelerator.device), "sum").item())
    if aborted:
        return EvalResult(float("nan"), float("nan"), None, float("nan"), 0, time.perf_counter() - t0, aborted=True)
    parts = [(ids, hyps, bad, loss_sum, n_loss)]
    if world > 1:
        from accelerate.utils import gather_object

        parts = gather_object(parts)
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


def bucket_pers(rows, res: EvalResult) -> dict[str, dict[str, float]]:
    """PER per age group and per SNR bucket of the decoded utterances (``rows``: their manifest rows), keyed
    like the ``eval`` event's ``per_age`` and ``per_snr``; the reports' buckets, so the live figures and the
    final report's agree. Buckets without a decoded utterance are left out."""
    by_id = {r.id: r for r in rows}
    decoded = [by_id[i] for i in res.ids]
    refs = [phone_tokens(r) for r in res.refs]
    hyps = [phone_tokens(h) for h in res.hyps]
    out = {}
    for name, dimension in (("per_age", "age_group"), ("per_snr", "snr")):
        b = assign(decoded, dimension)
        out[name] = {label: count_errors([refs[i] for i in members], [hyps[i] for i in members]).rate
                     for k, label in enumerate(b.labels) if len(members := b.members(k))}
    return out


def prediction_rows(rows, res: EvalResult, pseudo_speakers: set[str] = frozenset()) -> list[dict]:
    """predictions.jsonl's rows: each decoded utterance with its metadata (``pseudo_speakers``: the speakers
    of the pseudo-labelled rows the model trained on; none, and every row's pseudo_speaker is null)."""
    by_id = {r.id: r for r in rows}
    return [{"id": i, "speaker": by_id[i].speaker, "age": by_id[i].age, "age_range": by_id[i].age_range,
             "gender": by_id[i].gender, "snr": by_id[i].snr, "duration": by_id[i].duration,
             "split": by_id[i].split, "ref": r, "hyp": h,
             "pseudo_speaker": (by_id[i].speaker in pseudo_speakers) if pseudo_speakers else None}
            for i, r, h in zip(res.ids, res.refs, res.hyps)]


def score_manifest(forward, manifest: str, settings: EvalSettings, reporter, inverse_vocab: dict[int, str], *,
                   rows=None, step: int = 0, accelerator=None, should_stop: Callable[[], bool] = lambda: False,
                   log: Callable[[str], None] = print, pseudo_speakers: set[str] = frozenset(), decoder=None,
                   decoding: dict | None = None) -> EvalResult:
    """The test evaluation of ``forward`` on ``manifest`` (its ``rows``, when the caller has loaded them):
    per-utterance predictions with their metadata (predictions.jsonl) and a ``test`` event; a row that cannot
    be used, or an utterance that fails to load, becomes a ``bad_sample`` warning. Nothing is written when a
    stop request aborted it (``result.aborted``). ``decoder``: greedy when None; ``decoding``: how it decodes,
    for the test event (trainers.test_decoding)."""
    unusable: list[tuple[str, str]] = []
    if rows is None:
        rows = load_rows(manifest, bad=unusable, unique=True)
    refs = {r.id: " ".join(r.phones.split()) for r in rows}
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    loader = eval_loader(rows, settings, forward, rank, world, manifest, should_stop)
    res = evaluate(forward, reporter.counting(loader),
                   inverse_vocab, refs, accelerator=accelerator, should_stop=should_stop, decoder=decoder)
    if res.aborted:
        return res
    for k, (uid, why) in enumerate(unusable + res.bad, 1):
        reporter.emit(rundir.EV_WARNING, step=step, what=rundir.BAD_SAMPLE, message=f"test: {why}", count=k, id=uid)
    reporter.emit(rundir.EV_TEST, step=step, per=res.per, cer=res.cer, wer=res.wer, n=res.n,
                  split=rows[0].split if rows else "test", **bucket_pers(rows, res), **(decoding or {}))
    reporter.predictions(prediction_rows(rows, res, pseudo_speakers))
    log(f"test: PER {res.per:.4f} WER {res.wer:.4f} on {res.n} utterances"
        + (f" ({decoding['decoder']})" if decoding else ""))
    return res
