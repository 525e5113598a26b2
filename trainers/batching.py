"""Batches by total padded audio duration, planned from manifest durations alone.

An epoch's plan is a pure function of (durations, seed, epoch): shuffle,
sort each bucket of ``bucket`` utterances by duration, cut it into batches
whose padded length (count x longest) stays within ``batch_seconds``, then
shuffle the batches. Planning needs no audio, so every process computes the
same plan and takes its own share, and a resumed run recomputes it exactly.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np


def stable_key(seed: int, text: str) -> int:
    """A hash of (seed, text) that does not change between processes or runs."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest(), "big")


# the most of an evaluation batch that may be padding. Sorted, a large set's neighbours differ by
# milliseconds and the budget alone cuts; where lengths are sparse (a small set, the long tail) a batch
# cut by the budget alone pads 2 s utterances to 15 s, and attention's cost grows with the square of it
EVAL_MAX_PADDING = 0.1


def _cut(order: Sequence[int], durations: Sequence[float], batch_seconds: float, max_utts: int,
         max_padding: float = 1.0) -> list[list[int]]:
    """Cut indices already sorted by duration into batches within the padded budget, each at most
    ``max_padding`` padding."""
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = real = 0.0
    for i in order:
        d = durations[i]
        new_longest = max(longest, d)
        n = len(cur) + 1
        if cur and (n > max_utts or n * new_longest > batch_seconds
                    or real + d < (1.0 - max_padding) * n * new_longest):
            batches.append(cur)
            cur, new_longest, real = [], d, 0.0
        cur.append(i)
        longest = new_longest
        real += d
    if cur:
        batches.append(cur)
    return batches


def plan_epoch(durations: Sequence[float], *, seed: int, epoch: int, batch_seconds: float,
               max_utts: int, bucket: int) -> list[list[int]]:
    """Training batches (lists of row indices) for one epoch: duration buckets, shuffled."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(durations))
    dur = np.asarray(durations, dtype=np.float64)
    batches: list[list[int]] = []
    for start in range(0, len(order), bucket):
        chunk = order[start:start + bucket]
        chunk = chunk[np.argsort(dur[chunk], kind="stable")]
        batches += _cut(chunk.tolist(), durations, batch_seconds, max_utts)
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def plan_random(durations: Sequence[float], *, seed: int, epoch: int, batch_size: int) -> list[list[int]]:
    """Fixed-size random batches (what duration batching replaces; kept for comparison)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(durations)).tolist()
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def plan_sorted(durations: Sequence[float], *, batch_seconds: float, max_utts: int) -> list[list[int]]:
    """Evaluation batches: all utterances sorted by length, cut by the padded budget and
    ``EVAL_MAX_PADDING``."""
    order = sorted(range(len(durations)), key=lambda i: (durations[i], i))
    return _cut(order, durations, batch_seconds, max_utts, EVAL_MAX_PADDING)


def shard(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This process's batches: every ``world``-th. Ranks short of the last round get an
    empty batch, so every process runs the same number of steps (DDP needs it)."""
    rounds = -(-len(batches) // world)
    return [batches[r * world + rank] if r * world + rank < len(batches) else [] for r in range(rounds)]


def padding_fraction(batches: list[list[int]], durations: Sequence[float]) -> float:
    """Share of padded audio over all batches (0: no padding)."""
    padded = sum(len(b) * max(durations[i] for i in b) for b in batches if b)
    real = sum(durations[i] for b in batches for i in b)
    return 1.0 - real / padded if padded else 0.0
