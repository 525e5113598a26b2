"""Debiased exponential moving average of training curves.

A plain EMA started at 0 (or at the first value) is pulled toward its start for
the first ~1/(1-w) points; dividing by ``1 - w**n`` (as Adam does) removes that
bias, so the smoothed curve starts on the data. Non-finite values (a NaN loss)
are skipped: they neither move the average nor get a smoothed value.
"""

from __future__ import annotations

import math

import numpy as np


def _block_len(weight: float) -> int:
    # a block's terms are scaled by weight**-k: keep that under 1e6 so float64
    # cumsums lose nothing visible
    return max(1, min(4096, int(6 / -math.log10(weight))))


def _ema_finite(x: np.ndarray, weight: float, state: float, count: int) -> tuple[np.ndarray, float, int]:
    """Biased EMA of finite ``x`` continuing from ``state`` after ``count`` values.

    Vectorised by blocks: within a block, s_k = w^(k+1) s + (1-w) sum_j w^(k-j) x_j
    is a scaled cumsum; only the carry between blocks is a Python loop."""
    n = len(x)
    b = min(_block_len(weight), n)
    n_blocks = -(-n // b)
    padded = np.zeros(n_blocks * b)
    padded[:n] = x
    blocks = padded.reshape(n_blocks, b)
    k = np.arange(b)
    local = np.cumsum(blocks * weight ** (-k), axis=1) * ((1 - weight) * weight ** k)
    carry_in = np.empty(n_blocks)
    decay = weight ** b
    for i in range(n_blocks):
        carry_in[i] = state
        state = decay * state + local[i, -1]
    out = (local + np.outer(carry_in, weight ** (k + 1))).ravel()[:n]
    state = float(out[-1])
    # the bias 1 - w^seen reaches 1.0 in float64 after a few thousand points: only divide those
    m = min(n, max(0, int(17 / -math.log10(weight)) + 1 - count))
    if m:
        out[:m] /= 1 - weight ** (count + np.arange(1, m + 1))
    return out, state, count + n


class DebiasedEma:
    """Incremental debiased EMA: ``extend`` only smooths the new points."""

    def __init__(self, weight: float):
        if not 0 <= weight < 1:
            raise ValueError(f"EMA weight must be in [0, 1), got {weight}")
        self.weight = weight
        self._state = 0.0
        self._count = 0

    def extend(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        out = np.full(values.shape, np.nan)
        finite = np.isfinite(values)
        if self.weight == 0:
            out[finite] = values[finite]
            return out
        if finite.any():
            out[finite], self._state, self._count = _ema_finite(values[finite], self.weight, self._state, self._count)
        return out
