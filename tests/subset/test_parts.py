"""The builder's parts: strata buckets, proportional filling, nesting, stratified sampling."""

from __future__ import annotations

import numpy as np
import pytest

from kidconsole.subset.curriculum import curriculum_phases
from kidconsole.subset.sample import allocate, stratified_sample
from kidconsole.subset.select import water_fill
from kidconsole.subset.strata import Strata


def test_default_bucket_labels_read_as_ages_and_units():
    s = Strata()
    assert s.labels("age") == ["<5", "5-6", "7-8", "9-10", "11-17", "18+", "unknown"]
    assert s.labels("snr") == ["<10 dB", "10-20 dB", "20-30 dB", ">=30 dB", "unknown"]
    assert s.labels("duration") == ["<2 s", "2-4 s", "4-8 s", ">=8 s"]


def test_missing_values_fall_in_the_unknown_bucket_and_edges_are_half_open():
    s = Strata()
    b = s.buckets(age=np.array([4.9, 5.0, np.nan, 40]), snr=np.array([np.nan, 10.0, 9.99, 30]),
                  duration=np.array([1.0, 2.0, 8.0, 3.0]))
    assert [s.labels("age")[i] for i in b["age"]] == ["<5", "5-6", "unknown", "18+"]
    assert [s.labels("snr")[i] for i in b["snr"]] == ["unknown", "10-20 dB", "<10 dB", ">=30 dB"]
    assert [s.labels("duration")[i] for i in b["duration"]] == ["<2 s", "2-4 s", ">=8 s", "2-4 s"]
    cells = s.cells(age=np.array([5.5]), snr=np.array([25.0]), duration=np.array([5.0]))
    assert s.cell_label(int(cells[0])) == "5-6 / 20-30 dB / 4-8 s"


def test_water_fill_is_proportional_until_a_cell_runs_out():
    shares = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(water_fill(np.array([100, 100, 100]), shares, 10), [5, 3, 2])
    capped = water_fill(np.array([100, 100, 1]), shares, 10)
    assert capped[2] == 1 and capped.sum() == pytest.approx(10)
    assert capped[0] / capped[1] == pytest.approx(5 / 3)
    np.testing.assert_allclose(water_fill(np.array([1, 2, 3]), shares, 100), [1, 2, 3])
    assert water_fill(np.array([5, 5, 5]), np.array([0.5, 0.5, 0.0]), 4)[2] == 0


def test_curriculum_prefixes_nest_and_keep_each_cells_share():
    rng = np.random.default_rng(0)
    n = 5000
    cell, dur = rng.integers(0, 4, n), rng.uniform(1, 9, n)
    rows = np.arange(n)
    phases = curriculum_phases(rows, cell, dur, (0.1, 0.5, 1.0), rng.random(n))
    assert set(phases[0]) < set(phases[1]) < set(phases[2]) == set(rows)
    for c in range(4):
        whole = dur[cell == c].sum()
        got = dur[phases[0]][cell[phases[0]] == c].sum()
        assert got == pytest.approx(0.1 * whole, abs=9)


def test_allocate_spreads_a_count_by_largest_remainder():
    assert allocate(np.array([50, 30, 20]), 10).tolist() == [5, 3, 2]
    assert allocate(np.array([1, 1, 1]), 2).sum() == 2
    assert allocate(np.array([3, 4]), 100).tolist() == [3, 4]


def test_stratified_sample_keeps_cell_proportions():
    rng = np.random.default_rng(1)
    cell = np.repeat([0, 1, 2], [600, 300, 100])
    sample = stratified_sample(np.arange(1000), cell, 100, rng.random(1000))
    assert np.bincount(cell[sample]).tolist() == [60, 30, 10]
    assert np.all(np.diff(sample) > 0)


def test_water_fill_of_all_but_a_rounding_error_takes_every_capacity():
    rng = np.random.default_rng(2)
    capacity, shares = rng.uniform(0, 5000, 120), rng.dirichlet(np.ones(120))
    total = capacity.sum() * (1 - 1e-15)
    np.testing.assert_allclose(water_fill(capacity, shares, total), capacity, rtol=1e-9)
