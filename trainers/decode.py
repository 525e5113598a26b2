"""CTC decoding: greedy (best id per frame, repeats collapsed, blanks dropped) and beam search with a
phone LM, behind one decoder object that every caller builds from its options (``build_decoder``):
transcribe, serve, the test evaluation and scoring only pass the options through.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field

import torch

from kidconsole.decoding import GREEDY, DecoderOptions
from kidconsole.errors import KidconsoleError


def greedy_ids(logits: torch.Tensor, frame_lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Per utterance, the decoded ids (``logits``: batch x frames x vocab)."""
    best = logits.argmax(dim=-1).cpu()
    out = []
    for row, n in zip(best, frame_lengths.tolist()):
        seq = torch.unique_consecutive(row[:n]).tolist()
        out.append([i for i in seq if i != blank])
    return out


def ids_to_phones(ids: list[int], inverse_vocab: dict[int, str]) -> str:
    """Ids to a manifest-style phone string (space-separated, ``|`` between words)."""
    return " ".join(inverse_vocab.get(i, "<unk>") for i in ids)


def greedy_with_confidence(logits: torch.Tensor, frame_lengths: torch.Tensor,
                           blank: int = 0) -> list[list[tuple[int, float]]]:
    """Per utterance, each decoded id with its confidence: the CTC posterior of that id, averaged over the
    frames of its run (a phone held for three frames has three posteriors)."""
    probs = logits.detach().float().softmax(dim=-1).cpu()
    best_p, best = probs.max(dim=-1)
    out = []
    for row, p, n in zip(best, best_p, frame_lengths.tolist()):
        ids, counts = torch.unique_consecutive(row[:n], return_counts=True)
        ends = counts.cumsum(0)
        sums = torch.cat([torch.zeros(1), p[:n].double().cumsum(0)])
        means = (sums[ends] - sums[ends - counts]) / counts
        out.append([(i, round(float(c), 4)) for i, c in zip(ids.tolist(), means.tolist()) if i != blank])
    return out


# ---------- decoders: one object per set of options, used by every caller ----------

@dataclass
class Decoded:
    """One utterance's decode: its ids with their confidences, and (beam) the N best distinct decodes."""
    ids: list[int]
    confidences: list[float]
    nbest: list[tuple[list[int], float]] = field(default_factory=list)  # (ids, score), best first

    def phones(self, inverse_vocab: dict[int, str]) -> str:
        return ids_to_phones(self.ids, inverse_vocab)

    def nbest_record(self, inverse_vocab: dict[int, str]) -> list[dict]:
        return [{"phones": ids_to_phones(ids, inverse_vocab), "score": round(score, 4)} for ids, score in self.nbest]


class GreedyDecoder:
    """The best id per frame (``greedy_with_confidence``)."""

    def __call__(self, logits: torch.Tensor, frame_lengths: torch.Tensor) -> list[Decoded]:
        return [Decoded([i for i, _ in seq], [c for _, c in seq])
                for seq in greedy_with_confidence(logits, frame_lengths)]


def _collapse(path: list[int], probs: torch.Tensor, blank: int) -> tuple[list[int], list[float]]:
    """A frame path's ids (repeats collapsed, blanks dropped) with each one's mean posterior over its run."""
    ids, confs = [], []
    start = 0
    for t in range(1, len(path) + 1):
        if t == len(path) or path[t] != path[start]:
            if path[start] != blank:
                ids.append(path[start])
                confs.append(round(float(probs[start:t, path[start]].double().mean()), 4))
            start = t
    return ids, confs


@contextlib.contextmanager
def _quiet_stderr():
    """KenLM writes its loading progress straight to file descriptor 2: hidden while it loads."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class BeamDecoder:
    """CTC beam search with torchaudio's flashlight-based decoder (lexicon-free: the phones are the LM's
    words), with a phone LM through KenLM when the options name one. Each utterance's frame path is
    collapsed here rather than by torchaudio, which drops a ``|`` said in the first frame (the decoder's
    own start is a ``|``)."""

    def __init__(self, options: DecoderOptions, vocab: dict[str, int]):
        from torchaudio.models.decoder import ctc_decoder

        from kidconsole.phone_lm import check_phone_lm
        from kidconsole.phonemes import PAD, SYMBOLS, UNK, WORD_SEP

        self.options = options
        tokens = sorted(vocab, key=vocab.get)
        if [vocab[t] for t in tokens] != list(range(len(tokens))):
            raise KidconsoleError("the model's vocabulary ids are not 0..N-1: cannot beam-decode it")
        if PAD not in vocab or WORD_SEP not in vocab:
            raise KidconsoleError(f"the model's vocabulary lacks {PAD} (the blank) or {WORD_SEP}: cannot beam-decode "
                                  f"it")
        self.blank = vocab[PAD]
        lm = None
        try:
            if options.with_lm:
                from flashlight.lib.text.decoder.kenlm import KenLM
                from flashlight.lib.text.dictionary import Dictionary

                check_phone_lm(options.lm, [t for t in tokens if t in SYMBOLS])
                # the LM's words indexed as the tokens: lexicon-free, the decoder scores a token id as a word id
                # (torchaudio's own word dictionary, made from a path, is ordered otherwise)
                with _quiet_stderr():
                    lm = KenLM(str(options.lm), Dictionary(tokens))
            with _quiet_stderr():
                self._decoder = ctc_decoder(lexicon=None, tokens=tokens, lm=lm, nbest=options.beam,
                                            beam_size=options.beam, lm_weight=options.lm_weight if lm else 0.0,
                                            sil_score=0.0, blank_token=PAD, sil_token=WORD_SEP, unk_word=UNK)
        except RuntimeError as e:
            raise KidconsoleError(f"{options.lm}: KenLM cannot load it: {str(e)[-300:]}") from e

    def __call__(self, logits: torch.Tensor, frame_lengths: torch.Tensor) -> list[Decoded]:
        log_probs = logits.detach().float().log_softmax(dim=-1).cpu().contiguous()
        probs = log_probs.exp()
        b, t, v = log_probs.shape
        row = log_probs.stride(0) * log_probs.element_size()
        out = []
        for k, n in enumerate(frame_lengths.tolist()):
            results = self._decoder.decoder.decode(log_probs.data_ptr() + k * row, int(n), v) if n else []
            seen: dict[tuple, float] = {}
            best = None
            for r in sorted(results, key=lambda r: -r.score):
                path = list(r.tokens)[1:int(n) + 1]  # the decoder's start and end entries aside
                ids, confs = _collapse(path, probs[k], self.blank)
                if best is None:
                    best = (ids, confs)
                seen.setdefault(tuple(ids), float(r.score))  # the best score of each distinct decode
                if len(seen) >= self.options.nbest:
                    break
            ids, confs = best or ([], [])
            out.append(Decoded(ids, confs, [(list(i), s) for i, s in seen.items()]))
        return out


def build_decoder(options: DecoderOptions | None, vocab: dict[str, int]):
    """The decoder for ``options`` (None: greedy) over a model's ``vocab``; a missing LM file or an LM over
    another phone set is a KidconsoleError."""
    if options is None or options.kind == GREEDY:
        return GreedyDecoder()
    return BeamDecoder(options, vocab)
