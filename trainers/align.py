"""Forced alignment: where each reference phone is in the audio, how sure the model is of it, and how well
an utterance's label fits its audio.

``python -m trainers.align MODEL MANIFEST [-o alignments.jsonl]`` (``kidconsole align`` starts it). The
manifest streams in chunks through batched forward passes (trainers.confidence's batching, the next batch's
audio read ahead); each utterance's reference phones are aligned to its frames with torchaudio's CTC
``forced_align`` (the Viterbi path through the reference; one utterance at a time, as the operator takes it)
and one line is appended per utterance as it goes: killed and started again, it resumes where it stopped
(trainers.select's scores file, under the header ``alignments_of``).

A line: the utterance's ``phones`` as ``{phone, start, end, posterior, gop}`` (seconds; ``posterior``: the
phone's mean posterior over the frames the path gives it; ``gop``: goodness of pronunciation, the mean over
those frames of its log posterior minus the best competing phone's, negative where another phone was
likelier), and for the utterance: ``score``, the forced path's log probability per frame; ``free_score``,
the best unconstrained path's (each frame's best symbol); ``gap`` = free_score - score >= 0, how much the
label costs against what the model hears per frame, and ``misfit``, the same summed over the frames and
divided by the labelled phones, which the audit ranks by (trainers.audit); the greedy decode ``hyp``, its
``per`` against the label and ``length_ratio`` (decoded phones / reference phones).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kidconsole.errors import KidconsoleError
from kidconsole.metrics import count_errors, phone_tokens
from kidconsole.phonemes import PAD
from trainers.confidence import Scorer
from trainers.transcribe import Item, Skipped

HEADER = "alignments_of"
SUMMARY = ("id", "duration", "speaker", "age", "snr", "error", "score", "free_score", "gap", "misfit", "per",
           "length_ratio", "n_phones")


@dataclass
class Alignment:
    id: str
    duration: float
    ref: str
    hyp: str
    score: float
    free_score: float
    per: float
    length_ratio: float
    frames: int
    phones: list[dict] = field(default_factory=list)

    @property
    def misfit(self) -> float:
        """What the label costs against the free decode per labelled phone (the gap summed over the frames
        over the phones aligned): the audit's ranking."""
        return (self.free_score - self.score) * self.frames / max(1, len(self.phones))

    def record(self) -> dict:
        return {"id": self.id, "ref": self.ref, "hyp": self.hyp, "score": round(self.score, 5),
                "free_score": round(self.free_score, 5), "gap": round(self.free_score - self.score, 5),
                "misfit": round(self.misfit, 5),
                "per": round(self.per, 5), "length_ratio": round(self.length_ratio, 4), "n_phones": len(self.phones),
                "phones": self.phones}


def frame_times(config, sample_rate: int) -> tuple[float, float]:
    """(seconds per output frame, the time of frame 0): the feature encoder's total stride, and the centre of
    frame 0's receptive field (a frame hears (kernel - 1) x stride samples around it: 400 samples, 25 ms,
    for XLS-R; a phone's span is timed from the centre of its first frame)."""
    stride, field = 1, 1
    for k, s in zip(config.conv_kernel, config.conv_stride):
        field += (k - 1) * stride
        stride *= s
    return stride / sample_rate, (field - 1) / 2 / sample_rate


def align_one(log_probs: torch.Tensor, targets: list[int], blank: int, seconds: float, offset: float,
              inverse: dict[int, str]) -> tuple[list[dict], float]:
    """The reference ``targets`` aligned to ``log_probs`` (frames x vocab, this utterance's valid frames): each
    phone's span with its posterior and GOP, and the forced path's log probability per frame."""
    import torchaudio.functional as AF

    with warnings.catch_warnings():  # torchaudio marks its alignment functions deprecated; they are its own
        warnings.simplefilter("ignore")
        path, scores = AF.forced_align(log_probs[None], torch.tensor([targets], dtype=torch.int32), blank=blank)
        spans = AF.merge_tokens(path[0], scores[0], blank=blank)
    competing = log_probs.clone()
    competing[:, blank] = -math.inf
    phones = []
    for s in spans:
        frames = log_probs[s.start:s.end]
        own = frames[:, s.token]
        others = competing[s.start:s.end].clone()
        others[:, s.token] = -math.inf
        phones.append({"phone": inverse.get(s.token, "<unk>"), "start": round(offset + s.start * seconds, 3),
                       "end": round(offset + s.end * seconds, 3), "posterior": round(float(own.exp().mean()), 4),
                       "gop": round(float((own - others.max(dim=-1).values).mean()), 3)})
    return phones, float(scores[0].sum()) / max(1, log_probs.shape[0])


class Aligner(Scorer):
    """Aligns items with one recogniser, batched by duration like ``kidconsole transcribe``; ``score(items)``
    yields what trainers.select's ``score_pool`` writes (an Alignment per usable item, and the skipped)."""

    def __init__(self, recogniser, batch_seconds: float = 60.0, max_utterances: int = 64, threads: int = 4):
        super().__init__(recogniser, batch_seconds, max_utterances, threads)
        self.seconds, self.offset = frame_times(recogniser.config, recogniser.sample_rate)
        self.blank = recogniser.vocab.get(PAD, 0)  # the CTC blank

    def targets(self, it: Item) -> list[int] | str:
        """The reference phones as ids, or why they cannot be aligned."""
        if not it.ref:
            return "no reference phones to align"
        missing = sorted({p for p in it.ref.split() if p not in self.rec.vocab})
        if missing:
            return f"phones the model does not have: {' '.join(missing[:5])}"
        return [self.rec.vocab[p] for p in it.ref.split()]

    def score(self, items):
        for good, waves, bad in self.batches(items):
            out = self._align(good, waves) if good else ([], [])
            yield out[0], bad + out[1]

    @torch.no_grad()
    def _align(self, items: list[Item], waves: list) -> tuple[list[Alignment], list[Skipped]]:
        from trainers.data import ctc_feasible
        from trainers.decode import greedy_ids, ids_to_phones
        from trainers.waves import make_batch

        tr, rec = self.tr, self.rec
        batch = make_batch([it.id for it in items], waves, normalize=tr.normalize, padding_value=tr.padding_value,
                           masked=tr.masked)
        with rec.forward.evaluating():
            out = rec.forward(batch)
        log_probs = out.logits.detach().float().log_softmax(dim=-1).cpu()
        frames = out.frames.cpu()
        hyps = greedy_ids(log_probs, frames, self.blank)
        done, skipped = [], []
        for j, (it, w) in enumerate(zip(items, waves)):
            n = int(frames[j])
            targets = self.targets(it)
            if isinstance(targets, str):
                skipped.append(Skipped(it.id, it.audio, targets))
                continue
            if not ctc_feasible(n, targets):
                skipped.append(Skipped(it.id, it.audio, f"{len(targets)} reference phones do not fit its {n} frames "
                                                        f"({len(w) / rec.sample_rate:.2f} s)"))
                continue
            lp = log_probs[j, :n].contiguous()
            phones, score = align_one(lp, targets, self.blank, self.seconds, self.offset, tr.inverse)
            hyp = ids_to_phones(hyps[j], tr.inverse)
            ref_tokens, hyp_tokens = phone_tokens(it.ref), phone_tokens(hyp)
            done.append(Alignment(
                it.id, round(len(w) / rec.sample_rate, 3), it.ref, hyp, score, float(lp.max(dim=-1).values.mean()),
                count_errors([ref_tokens], [hyp_tokens]).rate, len(hyp_tokens) / max(1, len(ref_tokens)), n, phones))
        return done, skipped


def summary(d: dict) -> dict:
    """What of an alignment line the audit needs in memory (not the phones)."""
    return {k: d[k] for k in SUMMARY if k in d}


def align_manifest(rec, manifest: Path, output: Path, *, batch_seconds: float = 60.0, threads: int = 4,
                   progress: bool = False, console=None) -> list[dict]:
    """Every utterance of ``manifest`` aligned into ``output`` (resuming what it holds); the summaries of all
    its lines (trainers.align.summary)."""
    from trainers.select import count_lines, score_pool

    meta = {"model": str(rec.path), "manifest": str(manifest.resolve())}
    aligner = Aligner(rec, batch_seconds=batch_seconds, threads=threads)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("aligning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("", total=count_lines(manifest))
                return score_pool(aligner, manifest, output, meta, lambda n: bar.advance(task, n), header=HEADER,
                                  kept=summary)
        return score_pool(aligner, manifest, output, meta, header=HEADER, kept=summary)
    finally:
        aligner.close()


def parser() -> argparse.ArgumentParser:
    from kidconsole.job_arguments import add_align_arguments

    ap = argparse.ArgumentParser(prog="python -m trainers.align", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_align_arguments(ap)
    return ap


def default_output(model: str) -> Path:
    """RUN/alignments.jsonl for a run directory (the console shows it beside the run's decodes), else
    ./alignments.jsonl."""
    from kidconsole import rundir

    p = Path(model)
    if p.is_dir() and ((p / rundir.STATUS).is_file() or (p / rundir.EXPORTS).is_dir()):
        return p / rundir.ALIGNMENTS
    return Path(rundir.ALIGNMENTS)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from kidconsole.job_arguments import show_progress
    from trainers.quiet import quiet_libraries
    from trainers.recogniser import load_recogniser

    args = parser().parse_args(argv)
    quiet_libraries()
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise KidconsoleError(f"{manifest}: no such manifest")
    output = Path(args.output) if args.output else default_output(args.model)
    rec = load_recogniser(args.model, device=args.device)
    records = align_manifest(rec, manifest, output, batch_seconds=args.batch_seconds, threads=args.threads,
                             progress=show_progress(args), console=err)
    aligned = [d for d in records if "error" not in d]
    skipped = [d for d in records if "error" in d]
    mean = sum(d["score"] for d in aligned) / len(aligned) if aligned else float("nan")
    err.print(f"{len(aligned)} utterances aligned to {output} (mean score per frame {mean:.3f})"
              + (f"; {len(skipped)} skipped" if skipped else ""), markup=False)
    for d in skipped[:20]:
        err.print(f"skipped {d['id']}: {d['error']}", markup=False)
    return 0


if __name__ == "__main__":
    from trainers.confidence import run_command

    run_command(main, "align")
