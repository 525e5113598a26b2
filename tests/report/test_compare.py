import numpy as np
import pytest

from kidconsole.errors import KidconsoleError
from kidconsole.report.compare import bootstrap_delta, compare
from kidconsole.report.compute import MIN_SPEAKERS, analyse, bucket_stats
from kidconsole.report.render import interval_text
from kidconsole.report.predictions import Prediction, parse_prediction


def runs(make_rows, err_a=0.2, err_b=0.2, n=80, seed_b=1):
    a = [parse_prediction(r) for r in make_rows(n, seed=0, err=err_a)]
    b = [parse_prediction(r) for r in make_rows(n, seed=0, err=err_b, hyp_seed=seed_b)]
    return analyse(a), analyse(b)


def test_bootstrap_is_deterministic_by_seed(make_rows):
    a, b = runs(make_rows)
    one = compare(a, b, n_boot=300, seed=7)
    again = compare(a, b, n_boot=300, seed=7)
    other = compare(a, b, n_boot=300, seed=8)
    intervals = [(d.lo, d.hi) for d in one.deltas]
    np.testing.assert_array_equal(intervals, [(d.lo, d.hi) for d in again.deltas])
    assert not np.array_equal(intervals, [(d.lo, d.hi) for d in other.deltas], equal_nan=True)
    np.testing.assert_array_equal([d.delta for d in one.deltas], [d.delta for d in other.deltas])


def test_a_bucket_interval_does_not_depend_on_the_other_buckets(make_rows):
    a, b = runs(make_rows)
    full = {(d.dimension, d.label): (d.lo, d.hi) for d in compare(a, b, n_boot=200).deltas}
    gender_only = compare(a, b, dimensions=["gender"], n_boot=200).deltas
    np.testing.assert_array_equal([full[(d.dimension, d.label)] for d in gender_only],
                                  [(d.lo, d.hi) for d in gender_only])


def test_identical_runs_differ_by_nothing(make_rows):
    a, _ = runs(make_rows)
    c = compare(a, a, n_boot=200)
    assert all(d.delta == 0 and not d.significant for d in c.deltas if d.n)
    assert all(d.lo == 0 and d.hi == 0 for d in c.deltas if d.speakers > 1)


def test_delta_is_the_run_minus_the_reference_so_negative_is_better(make_rows):
    reference, run = runs(make_rows, err_a=0.4, err_b=0.05, n=200)
    c = compare(run, reference, "lora", "baseline", n_boot=200)
    overall = c.deltas[0]
    assert (c.name, c.reference) == ("lora", "baseline")
    assert overall.rate < overall.reference and overall.delta == overall.rate - overall.reference < 0


def test_a_large_improvement_is_significant_and_a_small_noisy_one_is_not(make_rows):
    reference, run = runs(make_rows, err_a=0.4, err_b=0.05, n=200)
    overall = compare(run, reference, n_boot=500).deltas[0]
    assert overall.dimension == "all" and overall.delta < -0.1 and overall.significant and overall.hi < 0
    a, b = runs(make_rows, err_a=0.2, err_b=0.2, n=200)
    overall = compare(a, b, n_boot=500).deltas[0]
    assert overall.lo < overall.delta < overall.hi and not overall.significant


def test_one_speaker_has_no_speaker_bootstrap_interval():
    # every resample of one speaker is that speaker: no spread to speak of, so no interval at all
    a = analyse([Prediction(f"u{i}", "A G N", "A G" if i % 2 else "A", speaker="s1") for i in range(10)])
    b = analyse([Prediction(f"u{i}", "A G N", "A G N" if i % 3 else "A", speaker="s1") for i in range(10)])
    d = compare(a, b, dimensions=[], n_boot=100).deltas[0]
    assert d.speakers == 1 and d.delta != 0 and np.isnan(d.lo) and np.isnan(d.hi) and not d.significant
    assert interval_text(d) == "n/a (1 speaker)" and d.low_confidence


def test_fewer_than_five_speakers_are_low_confidence(make_rows):
    a, b = runs(make_rows, n=80)
    by_speakers = {d.speakers: d for d in compare(a, b, n_boot=50).deltas if d.n}
    assert by_speakers[10].low_confidence is False and not np.isnan(by_speakers[10].lo)
    low = [d for d in by_speakers.values() if 1 < d.speakers < MIN_SPEAKERS]
    assert low and all(d.low_confidence and interval_text(d).count("..") == 1 for d in low)
    buckets = bucket_stats(a, "age")
    assert [b.low_confidence for b in buckets] == [0 < b.speakers < MIN_SPEAKERS for b in buckets]
    assert any(b.low_confidence for b in buckets)


def test_utterances_without_a_speaker_are_resampled_one_by_one():
    a = analyse([Prediction(f"u{i}", "A G N", "A G" if i % 2 else "A") for i in range(10)])
    b = analyse([Prediction(f"u{i}", "A G N", "A G N" if i % 3 else "A") for i in range(10)])
    d = compare(a, b, dimensions=[], n_boot=200).deltas[0]
    assert d.speakers == 10 and d.lo < d.delta < d.hi


def test_bootstrap_of_no_speakers_is_undefined():
    empty = np.array([], dtype=float)
    assert all(np.isnan(bootstrap_delta(empty, empty, empty, empty)))


def test_runs_on_different_utterances_cannot_be_compared():
    a = analyse([Prediction("u1", "A", "A")])
    b = analyse([Prediction("u2", "A", "A")])
    with pytest.raises(KidconsoleError, match="share no utterance"):
        compare(a, b)


def test_only_common_utterances_are_compared(make_rows):
    a, b = runs(make_rows)
    b.rows = b.rows[:50]
    b.counts = b.counts[:50]
    c = compare(a, b, n_boot=50)
    assert (c.n_common, c.only_run, c.only_reference) == (50, 30, 0) and c.deltas[0].n == 50
