"""Speaker selection and the fill: hit a split's hours with the corpus's shape.

For one split with a target of T seconds:
1. Each age group (the speaker-level stratum) gets ``T * corpus share``
   (capped by what the pool holds, the rest spread over the other groups).
2. Per age group, speakers are taken in a seeded random order, whole, until
   their hours cover the group's target and every cell (age x SNR x duration)
   of the group can be filled to its corpus share.
3. The split's hours are spread over the cells in proportion to the corpus's
   shares, capped by what the selected speakers hold (``water_fill``).
4. In each cell, utterances are taken speaker by speaker in selection order, so
   the first speakers are used whole and only the last ones partly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFICIT = 0.005  # stop adding speakers once a group's unfillable cells are < 0.5% of its hours


def water_fill(capacity: np.ndarray, shares: np.ndarray, total: float) -> np.ndarray:
    """Spread ``total`` over cells in proportion to ``shares``, no cell above its capacity.

    Returns ``a`` with ``a = min(capacity, lam * shares)`` and ``a.sum() == total``;
    when the capacities hold less than ``total``, ``a == capacity``.
    """
    capacity = np.asarray(capacity, dtype=np.float64)
    shares = np.asarray(shares, dtype=np.float64)
    live = (shares > 0) & (capacity > 0)
    if capacity[live].sum() <= total * (1 + 1e-12):  # (sums of the same hours may differ in the last bits)
        return np.where(live, capacity, 0.0)
    # cells fill in order of capacity/share; find the first lam that leaves the rest uncapped
    idx = np.flatnonzero(live)
    ratio = capacity[idx] / shares[idx]
    order = idx[np.argsort(ratio, kind="stable")]
    cap_sorted, share_sorted = capacity[order], shares[order]
    capped_sum = np.concatenate([[0.0], np.cumsum(cap_sorted)])[:-1]
    share_left = np.cumsum(share_sorted[::-1])[::-1]
    lam = (total - capped_sum) / share_left
    uncapped = lam <= cap_sorted / share_sorted
    if not uncapped.any():  # total is all but a rounding error of the capacities
        return np.where(live, capacity, 0.0)
    first = int(np.argmax(uncapped))
    out = np.zeros_like(capacity)
    out[order[:first]] = cap_sorted[:first]
    out[order[first:]] = lam[first] * share_sorted[first:]
    return out


@dataclass
class Pool:
    """The utterances one split may draw from, with per-speaker hours per cell."""

    rows: np.ndarray          # indices into the table
    speakers: np.ndarray      # distinct speaker ids, in the seeded selection order
    hours: np.ndarray         # seconds per (position in ``speakers``, cell)
    group: np.ndarray         # the age group holding most of each speaker's hours


def make_pool(rows: np.ndarray, speaker: np.ndarray, cell: np.ndarray, duration: np.ndarray,
              n_cells: int, cells_per_group: int, rank: np.ndarray) -> Pool:
    """Group ``rows`` by speaker; speakers ordered by ``rank`` (a seeded permutation)."""
    spk = speaker[rows]
    present = np.unique(spk)
    present = present[np.argsort(rank[present], kind="stable")]
    pos = np.full(len(rank), -1, dtype=np.int64)
    pos[present] = np.arange(len(present))
    flat = pos[spk] * n_cells + cell[rows]
    hours = np.bincount(flat, weights=duration[rows], minlength=len(present) * n_cells)
    hours = hours.reshape(len(present), n_cells)
    n_groups = n_cells // cells_per_group
    per_group = hours.reshape(len(present), n_groups, cells_per_group).sum(axis=2)
    return Pool(rows=rows, speakers=present, hours=hours, group=per_group.argmax(axis=1))


def pick_speakers(pool: Pool, cell_share: np.ndarray, target: float, cells_per_group: int) -> np.ndarray:
    """Positions (into ``pool.speakers``) of the speakers a split needs; see the module doc."""
    n_groups = len(cell_share) // cells_per_group
    group_share = cell_share.reshape(n_groups, cells_per_group).sum(axis=1)
    pool_cells = pool.hours.sum(axis=0)
    group_target = water_fill(pool_cells.reshape(n_groups, cells_per_group).sum(axis=1), group_share, target)
    chosen = np.zeros(len(pool.speakers), dtype=bool)
    avail = np.zeros(len(cell_share))
    for g in range(n_groups):
        if group_target[g] <= 0:
            continue
        sl = slice(g * cells_per_group, (g + 1) * cells_per_group)
        share_g = cell_share[sl] / group_share[g]
        reachable = np.minimum(group_target[g] * share_g, pool_cells[sl])
        for p in np.flatnonzero((pool.group == g) & ~chosen):
            have = avail[sl]
            if have.sum() >= group_target[g] and np.maximum(reachable - have, 0).sum() <= DEFICIT * group_target[g]:
                break
            chosen[p] = True
            avail += pool.hours[p]
    # speakers are filed under their main group; others of their hours may still be missing
    if avail.sum() < target:
        for p in np.flatnonzero(~chosen):
            if avail.sum() >= target:
                break
            chosen[p] = True
            avail += pool.hours[p]
    return np.flatnonzero(chosen)


def fill(rows: np.ndarray, speaker_pos: np.ndarray, cell: np.ndarray, duration: np.ndarray,
         allocation: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Rows to keep so each cell holds about ``allocation[cell]`` seconds.

    ``speaker_pos`` orders speakers (earlier ones are used whole first);
    ``tiebreak`` (random keys) orders utterances within a speaker. An utterance
    is kept when its middle falls before the cell's allocation, so each cell
    lands within half an utterance of its share.
    """
    if len(rows) == 0:
        return rows
    c = cell[rows]
    order = np.lexsort((tiebreak[rows], speaker_pos, c))
    rows, c, d = rows[order], c[order], duration[rows[order]]
    cum = np.cumsum(d)
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    base = np.repeat(cum[starts] - d[starts], np.diff(np.r_[starts, len(c)]))
    within = cum - base  # running hours inside the row's cell, this row included
    keep = within - d / 2 < allocation[c]
    return np.sort(rows[keep])


def select_split(pool: Pool, cell_share: np.ndarray, target: float, *, speaker: np.ndarray,
                 cell: np.ndarray, duration: np.ndarray, cells_per_group: int,
                 tiebreak: np.ndarray) -> np.ndarray:
    """Rows of one split: speakers picked to cover ``target`` seconds, then filled cell by cell."""
    picked = pick_speakers(pool, cell_share, target, cells_per_group)
    allocation = water_fill(pool.hours[picked].sum(axis=0), cell_share, target)
    pos = np.full(speaker.max() + 1 if len(speaker) else 0, -1, dtype=np.int64)
    pos[pool.speakers[picked]] = np.arange(len(picked))
    rows = pool.rows[pos[speaker[pool.rows]] >= 0]
    return fill(rows, pos[speaker[rows]], cell, duration, allocation, tiebreak)
