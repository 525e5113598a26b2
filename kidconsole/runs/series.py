"""A chart series that grows by appends and downsamples in time independent of its length.

Points are kept raw, plus a pyramid of block minima and maxima (level k holds
blocks of FANOUT**(k+1) points), so a chart of a million points is a few
``reduceat`` calls over a few thousand block values, and spikes survive
(every bucket reports its min and max). x never goes back: a point whose x is
smaller than earlier points' drops those points first (a resumed run redoes the
steps after its checkpoint, and the redone values replace the lost ones).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

FANOUT = 16


class _Buf:
    """A growable float64 array."""

    __slots__ = ("a", "n")

    def __init__(self, cap: int = 64):
        self.a = np.empty(cap)
        self.n = 0

    def view(self) -> np.ndarray:
        return self.a[: self.n]

    def extend(self, vals: np.ndarray) -> None:
        need = self.n + len(vals)
        if need > len(self.a):
            grown = np.empty(max(need + need // 2, 2 * len(self.a)))  # room to grow without a copy
            grown[: self.n] = self.a[: self.n]
            self.a = grown
        self.a[self.n : need] = vals
        self.n = need


def _monotone(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply the 'later point drops earlier points with larger x' rule inside one chunk."""
    if len(xs) < 2 or not np.any(xs[1:] < xs[:-1]):
        return xs, ys
    later_min = np.minimum.accumulate(xs[::-1])[::-1]
    keep = np.ones(len(xs), bool)
    keep[:-1] = xs[:-1] <= later_min[1:]
    return xs[keep], ys[keep]


def _segments(a: np.ndarray, bounds: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """ufunc-reduce a over [bounds[i], bounds[i+1]); NaN for empty segments (bounds non-decreasing)."""
    starts, ends = bounds[:-1], bounds[1:]
    out = np.full(len(starts), np.nan)
    full = ends > starts
    if full.any():
        # empty segments between full ones have start == end == the next start, so
        # reducing at the full segments' starts alone gives each its exact range
        out[full] = ufunc.reduceat(a[bounds[0] : bounds[-1]], starts[full] - bounds[0])
    return out


class Series:
    """(x, y) points, x non-decreasing; non-finite values are skipped."""

    def __init__(self, xs: Iterable[float] = (), ys: Iterable[float] = ()):
        self._clear()
        self.extend(xs, ys)

    def _clear(self) -> None:
        self._x, self._y = _Buf(), _Buf()
        self._levels: list[tuple[_Buf, _Buf]] = []
        self._argmin = -1

    @property
    def x(self) -> np.ndarray:
        return self._x.view()

    @property
    def y(self) -> np.ndarray:
        return self._y.view()

    def __len__(self) -> int:
        return self._x.n

    @property
    def last(self) -> tuple[float, float] | None:
        n = self._x.n
        return (float(self._x.a[n - 1]), float(self._y.a[n - 1])) if n else None

    def min_point(self) -> tuple[float, float] | None:
        i = self._argmin
        return (float(self._x.a[i]), float(self._y.a[i])) if i >= 0 else None

    def max_point(self) -> tuple[float, float] | None:
        if not len(self):
            return None
        i = int(np.argmax(self.y))
        return float(self._x.a[i]), float(self._y.a[i])

    def append(self, x: float, y: float) -> None:
        self.extend((x,), (y,))

    def extend(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if xs.shape != ys.shape:
            raise ValueError(f"x and y differ in length: {xs.shape} vs {ys.shape}")
        ok = np.isfinite(xs) & np.isfinite(ys)
        if not ok.all():
            xs, ys = xs[ok], ys[ok]
        if not len(xs):
            return
        xs, ys = _monotone(xs, ys)
        n = self._x.n
        if n and self._x.a[n - 1] > xs[0]:
            self._truncate(int(np.searchsorted(self.x, xs[0], side="right")))
            n = self._x.n
        self._x.extend(xs)
        self._y.extend(ys)
        i = int(np.argmin(ys))
        if self._argmin < 0 or ys[i] < self._y.a[self._argmin]:
            self._argmin = n + i
        self._grow_levels()

    def prepend(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        """Put older points before the current ones (loading history backwards)."""
        old = Series(xs, ys)
        if not len(old):
            return
        if len(self):
            old.extend((self._x.a[0],), (self._y.a[0],))  # drops older points the newer ones superseded
            ox, oy = old.x[:-1], old.y[:-1]
        else:
            ox, oy = old.x, old.y
        x, y = np.concatenate([ox, self.x]), np.concatenate([oy, self.y])
        self._clear()
        self.extend(x, y)

    def _truncate(self, n: int) -> None:
        self._x.n = self._y.n = n
        size = n
        for lmin, lmax in self._levels:
            size //= FANOUT
            lmin.n = lmax.n = size
        self._levels = [lv for lv in self._levels if lv[0].n]
        self._argmin = int(np.argmin(self.y)) if n else -1

    def _grow_levels(self) -> None:
        src_min = src_max = self.y
        k = 0
        while len(src_min) >= FANOUT:
            if k == len(self._levels):
                self._levels.append((_Buf(), _Buf()))
            lmin, lmax = self._levels[k]
            done, full = lmin.n, len(src_min) // FANOUT
            if full > done:
                lo, hi = done * FANOUT, full * FANOUT
                lmin.extend(src_min[lo:hi].reshape(-1, FANOUT).min(axis=1))
                lmax.extend(src_max[lo:hi].reshape(-1, FANOUT).max(axis=1))
            src_min, src_max = lmin.view(), lmax.view()
            k += 1

    def downsample(self, n_buckets: int, x_min: float | None = None, x_max: float | None = None
                   ) -> tuple[list[float], list[float], list[float]]:
        """Bucket centres, min y and max y of the non-empty buckets of [x_min, x_max].

        Buckets are equal slices of x. When a bucket holds many points its edges
        snap to pyramid blocks (at most 1/FANOUT of a bucket away), so the cost
        depends on the number of buckets, not on the number of points.
        """
        n = len(self)
        if not n or n_buckets < 1:
            return [], [], []
        x, y = self.x, self.y
        lo = float(x[0]) if x_min is None else float(x_min)
        hi = float(x[-1]) if x_max is None else float(x_max)
        if hi < lo:
            return [], [], []
        if hi == lo:
            n_buckets = 1
        edges = np.linspace(lo, hi, n_buckets + 1)
        idx = np.searchsorted(x, edges, side="left")
        idx[-1] = np.searchsorted(x, hi, side="right")  # the last bucket holds x == hi
        per_bucket = (idx[-1] - idx[0]) / n_buckets
        level, size = -1, 1
        while level + 1 < len(self._levels) and size * FANOUT * FANOUT <= per_bucket:
            level, size = level + 1, size * FANOUT
        if level < 0:
            mins, maxs = _segments(y, idx, np.minimum), _segments(y, idx, np.maximum)
        else:
            lmin, lmax = (b.view() for b in self._levels[level])
            covered = len(lmin) * size
            b = idx.copy()
            inside = b <= covered
            b[inside] = np.minimum(np.rint(b[inside] / size).astype(np.int64) * size, covered)
            blocks = np.minimum(b, covered) // size
            rest = np.maximum(b, covered)  # points after the last whole block, read raw
            mins = np.fmin(_segments(lmin, blocks, np.minimum), _segments(y, rest, np.minimum))
            maxs = np.fmax(_segments(lmax, blocks, np.maximum), _segments(y, rest, np.maximum))
        centres = (edges[:-1] + edges[1:]) / 2 if hi > lo else np.array([lo])
        keep = ~np.isnan(mins)
        return centres[keep].tolist(), mins[keep].tolist(), maxs[keep].tolist()
