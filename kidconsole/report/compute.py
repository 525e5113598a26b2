"""Error counts: each utterance aligned once, counts aggregated per bucket.

PER counts phones (``|`` dropped), CER the Hangul syllables the phones compose
to, WER the ``|``-separated words, with the same tokenisation as
``kidconsole.metrics``. Alignments come from rapidfuzz's Levenshtein edit
operations, the engine jiwer itself runs (``metrics.align`` and
``metrics.count_errors`` give the same alignments): jiwer's wrapper builds a
Python object per aligned chunk, which costs about 6 s per metric on 100,000
utterances, too slow for a report that must take seconds. Only the edit
operations are kept (hits follow from the lengths), in flat numpy arrays, so
every bucket, phone and bootstrap figure is a vectorised sum over them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from kidconsole.phonemes import PHONES
from kidconsole.report.buckets import DIMENSIONS, TITLES, UNKNOWN, Buckets, assign
from kidconsole.report.predictions import Prediction, PredictionSet

METRICS = ("per", "cer", "wer")
H, S, D, I = range(4)  # columns of a counts array: hits, substitutions, deletions, insertions
_TAG = {"replace": S, "delete": D, "insert": I}
INITIAL, MEDIAL, FINAL = range(3)  # phone position in its word; a one-phone word counts as initial
POSITIONS = ("initial", "medial", "final")


class _Words:
    """Per word (the phones between two ``|``): its phone tokens, its WER token,
    each phone's position and its Hangul syllables, cached, since words repeat
    far more than utterances do. Composing syllables word by word is what
    ``metrics.syllable_tokens`` does too: ``phones_to_hangul`` composes each
    word on its own."""

    MAX_CACHED = 300_000

    def __init__(self) -> None:
        try:
            from kidconsole.g2p.hangul import phones_to_hangul
        except ImportError:  # the Hangul composer is missing: no CER
            phones_to_hangul = None
        self.compose = phones_to_hangul
        self._cache: dict[str, tuple[list[str], str, list[int], list[str]]] = {}

    def _word(self, piece: str):
        ph = piece.split()
        n = len(ph)
        pos = [INITIAL] if n == 1 else [INITIAL] + [MEDIAL] * (n - 2) + [FINAL]
        syl = [ch for ch in self.compose(piece) if not ch.isspace()] if self.compose else []
        return ph, "_".join(ph), pos, syl

    def split(self, phones: str) -> tuple[list[str], list[str], list[int], list[str]]:
        """Phone tokens, word tokens, phone positions and syllables of a phone string
        (the tokens of ``metrics.phone_tokens``, ``word_tokens`` and ``syllable_tokens``)."""
        tokens: list[str] = []
        words: list[str] = []
        pos: list[int] = []
        syl: list[str] = []
        cache = self._cache
        for piece in phones.split("|"):
            key = piece.strip()
            if not key:
                continue
            entry = cache.get(key)
            if entry is None:
                entry = self._word(key)
                if len(cache) < self.MAX_CACHED:
                    cache[key] = entry
            tokens += entry[0]
            words.append(entry[1])
            pos += entry[2]
            syl += entry[3]
        return tokens, words, pos, syl


@dataclass
class Analysis:
    """Every utterance aligned once: what all the report figures are summed from."""
    rows: list[Prediction]
    counts: np.ndarray            # (n, 3 metrics, 4: H S D I), int64
    vocab: list[str]              # phone id -> phone (the inventory first, unknown tokens after)
    ref_ids: np.ndarray           # all reference phones, concatenated
    ref_pos: np.ndarray           # their positions in their words (INITIAL, MEDIAL, FINAL)
    ref_offsets: np.ndarray       # (n + 1,) utterance i's phones are ref_ids[off[i]:off[i+1]]
    hyp_ids: np.ndarray
    hyp_offsets: np.ndarray
    err_utt: np.ndarray           # one entry per phone edit operation: the utterance
    err_op: np.ndarray            # S, D or I
    err_ref: np.ndarray           # reference phone id (-1 for an insertion)
    err_hyp: np.ndarray           # hypothesis phone id (-1 for a deletion)
    err_pos: np.ndarray           # position of the reference phone (-1 for an insertion)
    has_cer: bool = True
    _buckets: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.rows)

    def buckets(self, dimension: str, edges: dict | None = None) -> Buckets:
        key = (dimension, tuple(sorted((k, tuple(v)) for k, v in (edges or {}).items())))
        if key not in self._buckets:
            self._buckets[key] = assign(self.rows, dimension, edges)
        return self._buckets[key]

    def utterance_rate(self, metric: str = "per") -> np.ndarray:
        return rates(self.counts[:, METRICS.index(metric)])


def _edit_ops(refs: Sequence[list[str]], hyps: Sequence[list[str]]):
    """Edit operations of every pair, flat: utterance, op, ref index, hyp index."""
    utt: list[int] = []
    ops: list[int] = []
    src: list[int] = []
    dst: list[int] = []
    editops = Levenshtein.editops
    for i, (r, h) in enumerate(zip(refs, hyps)):
        e = editops(r, h).as_list()
        if e:
            utt += [i] * len(e)
            for tag, s, d in e:
                ops.append(_TAG[tag])
                src.append(s)
                dst.append(d)
    return (np.array(utt, dtype=np.int64), np.array(ops, dtype=np.int8),
            np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64))


def _counts(n: int, lengths: np.ndarray, utt: np.ndarray, ops: np.ndarray) -> np.ndarray:
    out = np.zeros((n, 4), dtype=np.int64)
    for op in (S, D, I):
        out[:, op] = np.bincount(utt[ops == op], minlength=n)
    out[:, H] = lengths - out[:, S] - out[:, D]
    return out


def analyse(rows: Sequence[Prediction] | PredictionSet) -> Analysis:
    """Align every utterance once (phones, syllables, words)."""
    if isinstance(rows, PredictionSet):
        rows = rows.rows
    rows = list(rows)
    n = len(rows)
    words = _Words()
    ref_ph, hyp_ph, ref_w, hyp_w, ref_s, hyp_s, ref_pos = [], [], [], [], [], [], []
    for r in rows:
        t, w, p, y = words.split(r.ref)
        ref_ph.append(t)
        ref_w.append(w)
        ref_s.append(y)
        ref_pos += p
        t, w, _, y = words.split(r.hyp)
        hyp_ph.append(t)
        hyp_w.append(w)
        hyp_s.append(y)
    has_cer = words.compose is not None

    def lengths(seqs):
        return np.fromiter(map(len, seqs), dtype=np.int64, count=n)

    counts = np.zeros((n, 3, 4), dtype=np.int64)
    ref_len, hyp_len = lengths(ref_ph), lengths(hyp_ph)
    utt, ops, src, dst = _edit_ops(ref_ph, hyp_ph)
    counts[:, 0] = _counts(n, ref_len, utt, ops)
    for m, (rs, hs) in ((1, (ref_s, hyp_s)), (2, (ref_w, hyp_w))):
        m_utt, m_ops, *_ = _edit_ops(rs, hs)
        counts[:, m] = _counts(n, lengths(rs), m_utt, m_ops)
    del ref_w, hyp_w, ref_s, hyp_s

    index: defaultdict[str, int] = defaultdict()
    index.default_factory = index.__len__  # unknown tokens get the next ids
    for p in PHONES:
        index[p]
    ref_ids = np.fromiter((index[t] for ts in ref_ph for t in ts), dtype=np.int64, count=int(ref_len.sum()))
    hyp_ids = np.fromiter((index[t] for ts in hyp_ph for t in ts), dtype=np.int64, count=int(hyp_len.sum()))
    ref_off = np.concatenate([[0], np.cumsum(ref_len)])
    hyp_off = np.concatenate([[0], np.cumsum(hyp_len)])
    has_ref = ops != I
    has_hyp = ops != D
    err_ref = np.full(len(ops), -1, dtype=np.int64)
    err_hyp = np.full(len(ops), -1, dtype=np.int64)
    err_pos = np.full(len(ops), -1, dtype=np.int8)
    pos_arr = np.array(ref_pos, dtype=np.int8)
    ref_at = ref_off[utt[has_ref]] + src[has_ref]
    err_ref[has_ref] = ref_ids[ref_at]
    err_pos[has_ref] = pos_arr[ref_at]
    err_hyp[has_hyp] = hyp_ids[hyp_off[utt[has_hyp]] + dst[has_hyp]]
    return Analysis(rows, counts, list(index), ref_ids, pos_arr, ref_off, hyp_ids, hyp_off,
                    utt, ops, err_ref, err_hyp, err_pos, has_cer)


def rates(counts: np.ndarray) -> np.ndarray:
    """Error rate per row of ``(..., 4)`` counts: errors over reference tokens; an
    empty reference is 0 without insertions and 1 with (as ``metrics.ErrorCounts.rate``)."""
    counts = np.asarray(counts)
    n_ref = counts[..., H] + counts[..., S] + counts[..., D]
    errors = counts[..., S] + counts[..., D] + counts[..., I]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = errors / n_ref
    return np.where(n_ref > 0, r, np.where(errors > 0, 1.0, 0.0))


@dataclass
class BucketStats:
    """One bucket's utterances, speakers and summed counts (3 metrics x H S D I)."""
    dimension: str
    label: str
    members: np.ndarray           # utterance indices
    speakers: int
    counts: np.ndarray            # (3, 4)

    @property
    def n(self) -> int:
        return len(self.members)

    def n_ref(self, metric: str = "per") -> int:
        c = self.counts[METRICS.index(metric)]
        return int(c[H] + c[S] + c[D])

    def rate(self, metric: str = "per") -> float:
        """Micro-averaged error rate; NaN for an empty bucket."""
        if self.n == 0:
            return float("nan")
        return float(rates(self.counts[METRICS.index(metric)]))

    def op_rate(self, op: int, metric: str = "per") -> float:
        """Substitutions, deletions or insertions over reference tokens; NaN when there are none."""
        n_ref = self.n_ref(metric)
        return float(self.counts[METRICS.index(metric), op] / n_ref) if n_ref else float("nan")


def _speaker_codes(a: Analysis) -> np.ndarray:
    return a.buckets("speaker").codes


def bucket_stats(a: Analysis, dimension: str, edges: dict | None = None) -> list[BucketStats]:
    """Stats for every bucket of ``dimension``; numeric buckets are listed even
    when empty (so the edges show), ``unknown`` only when it holds utterances."""
    b = a.buckets(dimension, edges)
    k = len(b.labels)
    sums = np.zeros((k, 3, 4), dtype=np.int64)
    flat = a.counts.reshape(a.n, 12)
    for j in range(12):
        sums.reshape(k, 12)[:, j] = np.bincount(b.codes, weights=flat[:, j], minlength=k)[:k].astype(np.int64)
    spk = _speaker_codes(a)
    n_spk = np.zeros(k, dtype=np.int64)
    if a.n:
        pairs = np.unique(b.codes * (int(spk.max()) + 1) + spk)
        n_spk = np.bincount(pairs // (int(spk.max()) + 1), minlength=k)[:k]
    order = np.argsort(b.codes, kind="stable")
    bounds = np.searchsorted(b.codes[order], np.arange(k + 1))
    out = []
    for j, label in enumerate(b.labels):
        members = order[bounds[j]:bounds[j + 1]]
        if label == UNKNOWN and not len(members):
            continue
        out.append(BucketStats(dimension, label, members, int(n_spk[j]), sums[j]))
    return out


def overall_stats(a: Analysis) -> BucketStats:
    spk = _speaker_codes(a)
    return BucketStats("all", "all", np.arange(a.n), len(np.unique(spk)), a.counts.sum(axis=0))


def macro_rate(buckets: Sequence[BucketStats], metric: str = "per") -> float:
    """The unweighted mean of the buckets' rates (``unknown`` and empty buckets left out)."""
    vals = [b.rate(metric) for b in buckets if b.label != UNKNOWN and b.n]
    return float(np.mean(vals)) if vals else float("nan")


def worst(a: Analysis, members: np.ndarray, k: int | None = None, metric: str = "per") -> np.ndarray:
    """Member utterances worst first: by error rate, then by error count."""
    c = a.counts[members, METRICS.index(metric)]
    r = rates(c)
    errors = c[:, S] + c[:, D] + c[:, I]
    order = np.lexsort((-errors, -r))
    return members[order[:k] if k is not None else order]
