"""Per-phone figures: error rate of each reference phone, the confusion
matrix, top confusion pairs, the weakest phones, and errors by the phone's
position in its word (children drop word-initial phones).

All of it is counted from the edit operations ``compute.analyse`` kept, for
all utterances or a subset (a bucket).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kidconsole.report.compute import D, I, POSITIONS, S, Analysis

EPS = "∅"  # the empty side of a deletion (hypothesis) or an insertion (reference)


@dataclass
class PhoneStats:
    phone: str
    count: int          # occurrences in the references
    substituted: int
    deleted: int
    inserted: int       # times the model inserted it

    @property
    def errors(self) -> int:
        return self.substituted + self.deleted

    @property
    def error_rate(self) -> float:
        """Substituted or deleted over occurrences; NaN for a phone never in a reference."""
        return self.errors / self.count if self.count else float("nan")


@dataclass
class PositionStats:
    position: str       # initial, medial, final
    count: int
    substituted: int
    deleted: int

    @property
    def error_rate(self) -> float:
        return (self.substituted + self.deleted) / self.count if self.count else float("nan")

    @property
    def deletion_rate(self) -> float:
        return self.deleted / self.count if self.count else float("nan")


@dataclass
class Confusion:
    """Counts of reference phone (rows) against hypothesis phone (columns);
    the last row and column are ``EPS``: insertions and deletions. The
    diagonal holds the hits."""
    labels: list[str]
    matrix: np.ndarray

    def shares(self) -> np.ndarray:
        """Each error cell's share of its reference phone's occurrences (hits, the diagonal, are 0);
        the insertion row is scaled to the most inserted phone instead (it has no occurrences)."""
        m = self.matrix
        off = m.astype(float).copy()
        off[range(len(off)), range(len(off))] = 0
        totals = m.sum(axis=1)[:, None].astype(float)
        share = off / np.where(totals > 0, totals, 1.0)
        share[-1] = off[-1] / max(off[-1].max(), 1)
        return share

    def pairs(self, k: int | None = 20) -> list[tuple[str, str, int, float]]:
        """The most frequent errors ``(ref, hyp, count, share of ref's occurrences)``,
        deletions (``hyp == EPS``) and insertions (``ref == EPS``) included."""
        m = self.matrix.copy()
        np.fill_diagonal(m, 0)
        row_tot = self.matrix.sum(axis=1)
        flat = np.argsort(-m, axis=None, kind="stable")
        out = []
        for f in flat[:k] if k is not None else flat:
            i, j = divmod(int(f), m.shape[1])
            if m[i, j] == 0:
                break
            share = m[i, j] / row_tot[i] if self.labels[i] != EPS and row_tot[i] else float("nan")
            out.append((self.labels[i], self.labels[j], int(m[i, j]), float(share)))
        return out


def _masks(a: Analysis, members: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(edit operations, reference phones) belonging to ``members``."""
    if members is None:
        return np.ones(len(a.err_utt), bool), np.ones(len(a.ref_ids), bool)
    utt = np.zeros(a.n, bool)
    utt[members] = True
    return utt[a.err_utt], np.repeat(utt, np.diff(a.ref_offsets))


def phone_stats(a: Analysis, members: np.ndarray | None = None) -> list[PhoneStats]:
    """One row per phone of the references or inserted by the model, in inventory order."""
    ops_m, ref_m = _masks(a, members)
    v = len(a.vocab)
    count = np.bincount(a.ref_ids[ref_m], minlength=v)
    ops, ref, hyp = a.err_op[ops_m], a.err_ref[ops_m], a.err_hyp[ops_m]
    sub = np.bincount(ref[ops == S], minlength=v)
    dele = np.bincount(ref[ops == D], minlength=v)
    ins = np.bincount(hyp[ops == I], minlength=v)
    return [PhoneStats(p, int(count[i]), int(sub[i]), int(dele[i]), int(ins[i]))
            for i, p in enumerate(a.vocab) if count[i] or ins[i] or sub[i]]


def weakest(stats: list[PhoneStats], k: int = 10, min_count: int = 20) -> list[PhoneStats]:
    """The phones with the highest error rate among those seen at least
    ``min_count`` times (all seen phones when none is that frequent)."""
    pool = [s for s in stats if s.count >= min_count] or [s for s in stats if s.count]
    return sorted(pool, key=lambda s: (-s.error_rate, -s.count, s.phone))[:k]


def confusion(a: Analysis, members: np.ndarray | None = None) -> Confusion:
    """The confusion matrix over the phones that occur (inventory order), plus ``EPS``."""
    ops_m, ref_m = _masks(a, members)
    v = len(a.vocab)
    full = np.zeros((v + 1, v + 1), dtype=np.int64)  # index v is EPS
    ops, ref, hyp = a.err_op[ops_m], a.err_ref[ops_m], a.err_hyp[ops_m]
    ref = np.where(ref < 0, v, ref)
    hyp = np.where(hyp < 0, v, hyp)
    np.add.at(full, (ref, hyp), 1)
    count = np.bincount(a.ref_ids[ref_m], minlength=v)
    hits = count - full[:v, :].sum(axis=1)  # occurrences not substituted or deleted
    full[np.arange(v), np.arange(v)] += hits
    used = np.flatnonzero(full[:v].sum(axis=1) + full[:, :v].sum(axis=0))
    keep = np.concatenate([used, [v]])
    return Confusion([a.vocab[i] for i in used] + [EPS], full[np.ix_(keep, keep)])


def utterances_with(a: Analysis, ref: str, hyp: str, members: np.ndarray | None = None) -> np.ndarray:
    """The utterances (of ``members``, or all) where reference phone ``ref`` came out as ``hyp``
    (``EPS`` on either side: a deletion or an insertion)."""
    vocab = {p: i for i, p in enumerate(a.vocab)}
    if (ref != EPS and ref not in vocab) or (hyp != EPS and hyp not in vocab):
        return np.zeros(0, dtype=np.int64)
    sel = (a.err_ref == (vocab[ref] if ref != EPS else -1)) & (a.err_hyp == (vocab[hyp] if hyp != EPS else -1))
    utts = np.unique(a.err_utt[sel])
    return np.intersect1d(utts, members) if members is not None else utts


def position_stats(a: Analysis, members: np.ndarray | None = None) -> list[PositionStats]:
    """Errors by the reference phone's position in its word. Insertions have no
    reference phone and are not counted here."""
    ops_m, ref_m = _masks(a, members)
    count = np.bincount(a.ref_pos[ref_m], minlength=3)
    ops, pos = a.err_op[ops_m], a.err_pos[ops_m]
    sub = np.bincount(pos[ops == S], minlength=3)
    dele = np.bincount(pos[ops == D], minlength=3)
    return [PositionStats(name, int(count[i]), int(sub[i]), int(dele[i])) for i, name in enumerate(POSITIONS)]
