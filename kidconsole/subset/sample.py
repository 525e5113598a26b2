"""The validation sample: a fixed, stratified number of validation utterances.

Evaluating on every validation utterance can cost more than the training it
checks; a stratified sample of ``max_val_samples`` keeps the split's shape
(each cell gets its share of the count, by largest remainder) at a fraction of
the time.
"""

from __future__ import annotations

import numpy as np


def allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """``n`` spread over cells in proportion to ``counts`` (largest remainder; never above a count)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = counts.sum()
    if n >= total:
        return counts.copy()
    exact = counts * (n / total)
    out = np.floor(exact).astype(np.int64)
    rest = n - out.sum()
    out[np.argsort(-(exact - out), kind="stable")[:rest]] += 1
    return np.minimum(out, counts)


def stratified_sample(rows: np.ndarray, cell: np.ndarray, n: int | None, key: np.ndarray) -> np.ndarray:
    """Sorted ``n`` rows of ``rows``, stratified by cell, chosen by the random ``key`` per row."""
    if n is None or n >= len(rows):
        return rows
    c = cell[rows]
    order = np.lexsort((key[rows], c))
    rows_o, c = rows[order], c[order]
    cells, starts, counts = np.unique(c, return_index=True, return_counts=True)
    take = allocate(counts, n)
    rank = np.arange(len(c)) - np.repeat(starts, counts)  # position inside the row's cell
    return np.sort(rows_o[rank < np.repeat(take, counts)])
