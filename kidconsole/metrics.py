"""Error rates on phone sequences: PER, CER (on syllables composed from the
phones) and WER (on ``|``-separated words), all through jiwer.

Phone strings are space-separated phones with ``|`` between words, as in the
manifest and the run directory. The trainer's evaluation and the reports
both count errors here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jiwer

from kidconsole.phonemes import WORD_SEP


def phone_tokens(phones: str) -> list[str]:
    """The phones of a sequence, word separators dropped (PER ignores them)."""
    return [p for p in phones.split() if p != WORD_SEP]


def word_tokens(phones: str) -> list[str]:
    """One token per ``|``-separated word: its phones joined by ``_``."""
    words = " ".join(phones.split()).split(WORD_SEP)
    return ["_".join(w.split()) for w in words if w.strip()]


def syllable_tokens(phones: str) -> list[str]:
    """The Hangul syllables the phones compose to (CER counts these)."""
    from kidconsole.g2p.hangul import phones_to_hangul

    return [ch for ch in phones_to_hangul(phones) if not ch.isspace()]


@dataclass
class ErrorCounts:
    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def n_ref(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors over reference length; an empty reference with insertions counts as 1.0."""
        if self.n_ref == 0:
            return 0.0 if self.insertions == 0 else 1.0
        return self.errors / self.n_ref

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(self.hits + other.hits, self.substitutions + other.substitutions,
                           self.deletions + other.deletions, self.insertions + other.insertions)


def count_errors(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> ErrorCounts:
    """Edit-operation counts summed over utterances (tokens must not hold spaces)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        return ErrorCounts()
    out = jiwer.process_words([" ".join(r) for r in refs], [" ".join(h) for h in hyps])
    return ErrorCounts(out.hits, out.substitutions, out.deletions, out.insertions)


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """Corpus-level PER, CER and WER (micro averages, fractions) of phone strings."""
    return {
        "per": count_errors([phone_tokens(r) for r in refs], [phone_tokens(h) for h in hyps]).rate,
        "cer": count_errors([syllable_tokens(r) for r in refs], [syllable_tokens(h) for h in hyps]).rate,
        "wer": count_errors([word_tokens(r) for r in refs], [word_tokens(h) for h in hyps]).rate,
    }


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """Token alignment as ``(op, ref_token, hyp_token)`` with op one of
    ``equal``, ``substitute``, ``delete`` (hyp None) or ``insert`` (ref None)."""
    if not ref and not hyp:
        return []
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    pairs: list[tuple[str, str | None, str | None]] = []
    for chunk in out.alignments[0]:
        r = list(ref[chunk.ref_start_idx:chunk.ref_end_idx])
        h = list(hyp[chunk.hyp_start_idx:chunk.hyp_end_idx])
        if chunk.type in ("equal", "substitute"):
            pairs += [(chunk.type, a, b) for a, b in zip(r, h)]
        elif chunk.type == "delete":
            pairs += [("delete", a, None) for a in r]
        else:
            pairs += [("insert", None, b) for b in h]
    return pairs
