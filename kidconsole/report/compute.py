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

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from kidconsole.phonemes import PHONES
from kidconsole.report.buckets import UNKNOWN, Buckets, assign
from kidconsole.report.predictions import Prediction, PredictionSet

METRICS = ("per", "cer", "wer")
H, S, D, I = range(4)  # columns of a counts array: hits, substitutions, deletions, insertions
_TAG = {"replace": S, "delete": D, "insert": I}
INITIAL, MEDIAL, FINAL = range(3)  # phone position in its word; a one-phone word counts as initial
POSITIONS = ("initial", "medial", "final")
# A bucket of fewer children than this is marked low-confidence: its rates and intervals rest on a handful
# of voices (one child's habits can move them by points).
MIN_SPEAKERS = 5


_PHONE_BASE = 0x100  # phone id i is the character chr(_PHONE_BASE + i) in the strings that are aligned


class _Words(dict):
    """Word (the text between two ``|``) -> its phones, word id, phone positions and
    Hangul syllables, each phone sequence as a string of one character per phone.

    Words repeat far more than utterances do, so each is taken apart once; the
    per-utterance work is then a handful of C-level joins, and rapidfuzz aligns
    strings, its fastest path. Syllables are composed word by word, as
    ``metrics.syllable_tokens`` does (``phones_to_hangul`` composes each word on
    its own)."""

    MAX_CACHED = 300_000

    def __init__(self) -> None:
        super().__init__()
        try:
            from kidconsole.g2p.hangul import phones_to_hangul
        except ImportError:  # the Hangul composer is missing: no CER
            phones_to_hangul = None
        self.compose = phones_to_hangul
        self.phones: dict[str, int] = {p: i for i, p in enumerate(PHONES)}  # unknown tokens get the next ids
        self.words: dict[str, int] = {}

    def __missing__(self, piece: str) -> tuple[str, int, str, str]:
        ph = piece.split()
        n = len(ph)
        if not n:
            entry = ("", -1, "", "")
        else:
            chars = "".join(chr(_PHONE_BASE + self.phones.setdefault(p, len(self.phones))) for p in ph)
            pos = "0" if n == 1 else "0" + "1" * (n - 2) + "2"  # INITIAL, MEDIAL, FINAL
            syl = "".join(self.compose(piece).split()) if self.compose else ""
            entry = (chars, self.words.setdefault("_".join(ph), len(self.words)), pos, syl)
        if len(self) < self.MAX_CACHED:
            self[piece] = entry
        return entry


_G0, _G1, _G2, _G3 = (itemgetter(k) for k in range(4))


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


def _edit_ops(refs: Sequence, hyps: Sequence, detail: bool = True):
    """Edit operations of every pair, flat: utterance, op (S, D, I) and, with
    ``detail``, the reference and hypothesis indices."""
    editops = Levenshtein.editops
    per_utt: list[int] = []
    found: list[tuple[str, int, int]] = []
    for r, h in zip(refs, hyps):
        if r == h:
            per_utt.append(0)
            continue
        e = editops(r, h).as_list()
        per_utt.append(len(e))
        found += e
    utt = np.repeat(np.arange(len(per_utt)), per_utt)
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return utt, np.zeros(0, dtype=np.int8), empty, empty
    tags, src, dst = zip(*found)
    tags = np.array(tags)
    ops = np.where(tags == "replace", S, np.where(tags == "delete", D, I)).astype(np.int8)
    if not detail:
        return utt, ops, None, None
    return utt, ops, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)


def _counts(n: int, lengths: np.ndarray, utt: np.ndarray, ops: np.ndarray) -> np.ndarray:
    out = np.zeros((n, 4), dtype=np.int64)
    for op in (S, D, I):
        out[:, op] = np.bincount(utt[ops == op], minlength=n)
    out[:, H] = lengths - out[:, S] - out[:, D]
    return out


def _codes(chars: str, base: int) -> np.ndarray:
    return (np.frombuffer(chars.encode("utf-32-le"), dtype=np.uint32).astype(np.int64) - base)


def analyse(rows: Sequence[Prediction] | PredictionSet) -> Analysis:
    """Align every utterance once (phones, syllables, words)."""
    if isinstance(rows, PredictionSet):
        rows = rows.rows
    rows = list(rows)
    n = len(rows)
    words = _Words()
    get = words.__getitem__
    ref_ph, hyp_ph, ref_w, hyp_w, ref_s, hyp_s, ref_pos = [], [], [], [], [], [], []
    for r in rows:
        ents = list(map(get, r.ref.split("|")))
        ref_ph.append("".join(map(_G0, ents)))
        ref_w.append([w for w in map(_G1, ents) if w >= 0])
        ref_pos.append("".join(map(_G2, ents)))
        ref_s.append("".join(map(_G3, ents)))
        ents = list(map(get, r.hyp.split("|")))
        hyp_ph.append("".join(map(_G0, ents)))
        hyp_w.append([w for w in map(_G1, ents) if w >= 0])
        hyp_s.append("".join(map(_G3, ents)))

    def lengths(seqs):
        return np.fromiter(map(len, seqs), dtype=np.int64, count=n)

    counts = np.zeros((n, 3, 4), dtype=np.int64)
    ref_len, hyp_len = lengths(ref_ph), lengths(hyp_ph)
    utt, ops, src, dst = _edit_ops(ref_ph, hyp_ph)
    counts[:, 0] = _counts(n, ref_len, utt, ops)
    for m, (rs, hs) in ((1, (ref_s, hyp_s)), (2, (ref_w, hyp_w))):
        m_utt, m_ops, _, _ = _edit_ops(rs, hs, detail=False)
        counts[:, m] = _counts(n, lengths(rs), m_utt, m_ops)
    del ref_w, hyp_w, ref_s, hyp_s

    ref_ids = _codes("".join(ref_ph), _PHONE_BASE)
    hyp_ids = _codes("".join(hyp_ph), _PHONE_BASE)
    pos_arr = (np.frombuffer("".join(ref_pos).encode("ascii"), dtype=np.uint8) - ord("0")).astype(np.int8)
    ref_off = np.concatenate([[0], np.cumsum(ref_len)])
    hyp_off = np.concatenate([[0], np.cumsum(hyp_len)])
    has_ref = ops != I
    has_hyp = ops != D
    err_ref = np.full(len(ops), -1, dtype=np.int64)
    err_hyp = np.full(len(ops), -1, dtype=np.int64)
    err_pos = np.full(len(ops), -1, dtype=np.int8)
    ref_at = ref_off[utt[has_ref]] + src[has_ref]
    err_ref[has_ref] = ref_ids[ref_at]
    err_pos[has_ref] = pos_arr[ref_at]
    err_hyp[has_hyp] = hyp_ids[hyp_off[utt[has_hyp]] + dst[has_hyp]]
    return Analysis(rows, counts, list(words.phones), ref_ids, pos_arr, ref_off, hyp_ids, hyp_off,
                    utt, ops, err_ref, err_hyp, err_pos, words.compose is not None)


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

    @property
    def low_confidence(self) -> bool:
        """Utterances from fewer than ``MIN_SPEAKERS`` speakers (an empty bucket has no figures at all)."""
        return 0 < self.speakers < MIN_SPEAKERS

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
