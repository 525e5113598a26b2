import numpy as np
import pytest

from kidconsole.runs.series import FANOUT, Series


def brute(xs, ys, n_buckets, lo, hi):
    edges = np.linspace(lo, hi, n_buckets + 1)
    out = []
    for k in range(n_buckets):
        m = (xs >= edges[k]) & ((xs < edges[k + 1]) if k < n_buckets - 1 else (xs <= hi))
        if m.any():
            out.append(((edges[k] + edges[k + 1]) / 2, ys[m].min(), ys[m].max()))
    return out


@pytest.mark.parametrize("n,buckets", [(1, 5), (10, 3), (1000, 37), (5000, 500)])
def test_downsample_of_few_points_per_bucket_is_exact(n, buckets):
    rng = np.random.default_rng(n)
    xs = np.sort(rng.uniform(0, 100, n))
    ys = rng.normal(size=n)
    s = Series(xs, ys)
    got = list(zip(*s.downsample(buckets)))
    assert np.allclose(got, brute(xs, ys, buckets, xs[0], xs[-1]))


def test_downsample_of_a_million_points_keeps_every_spike():
    rng = np.random.default_rng(0)
    n = 1_000_000
    xs = np.arange(n, dtype=float)
    ys = rng.normal(size=n)
    spikes = rng.choice(n, 20, replace=False)
    ys[spikes] = 100 + np.arange(20)
    s = Series()
    for i in range(0, n, 4096):  # grown in pieces, like a live run
        s.extend(xs[i:i + 4096], ys[i:i + 4096])
    cx, mins, maxs = s.downsample(200)
    assert len(cx) == 200
    assert min(mins) == ys.min() and max(maxs) == ys.max()
    width = n / 200
    for sp in spikes:  # each spike shows in its own bucket or, at a bucket edge, the next one
        k = int(sp // width)
        near = [maxs[j] for j in range(max(0, k - 1), min(200, k + 2))]
        assert max(near) >= ys[sp]
    # bucket maxima never exceed what the data holds near that bucket
    for k, m in enumerate(maxs):
        lo, hi = int(max(0, (k - 1) * width)), int(min(n, (k + 2) * width))
        assert m <= ys[lo:hi].max()


def test_zoomed_downsample_covers_only_the_range():
    xs = np.arange(100_000, dtype=float)
    s = Series(xs, xs)
    cx, mins, maxs = s.downsample(10, 20_000, 30_000)
    assert mins[0] >= 20_000 - 10_000 / 10 / FANOUT and maxs[-1] <= 30_000
    assert cx[0] == pytest.approx(20_500)


def test_point_with_smaller_x_replaces_the_later_points():
    s = Series([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    s.extend([3.5, 4.5], [1, 2])  # a resumed run redoes steps after 3
    assert s.x.tolist() == [1, 2, 3, 3.5, 4.5]
    assert s.y.tolist() == [10, 20, 30, 1, 2]
    assert s.min_point() == (3.5, 1.0)


def test_non_finite_values_are_skipped():
    s = Series([1, 2, 3], [1.0, float("nan"), float("inf")])
    assert len(s) == 1 and s.last == (1.0, 1.0)


def test_prepending_history_equals_reading_it_in_order():
    rng = np.random.default_rng(1)
    xs = np.concatenate([np.arange(0, 600), np.arange(500, 1000)]).astype(float)  # a resume at 500
    ys = rng.normal(size=len(xs))
    whole = Series(xs, ys)
    parts = Series(xs[800:], ys[800:])
    parts.prepend(xs[300:800], ys[300:800])
    parts.prepend(xs[:300], ys[:300])
    assert np.array_equal(whole.x, parts.x) and np.array_equal(whole.y, parts.y)
    assert whole.min_point() == parts.min_point()
    assert whole.downsample(50) == parts.downsample(50)


def test_truncation_keeps_the_pyramid_consistent():
    xs = np.arange(10_000, dtype=float)
    ys = np.sin(xs / 100)
    s = Series(xs, ys)
    s.append(5000.5, -5.0)
    ref = Series(np.append(xs[:5001], 5000.5), np.append(ys[:5001], -5.0))
    assert s.downsample(7) == ref.downsample(7)
    assert s.min_point() == (5000.5, -5.0)
