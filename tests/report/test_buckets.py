import math

import numpy as np
import pytest

from kidconsole.errors import KidconsoleError
from kidconsole.report.buckets import UNKNOWN, assign, bin_values, parse_edges
from kidconsole.report.compute import analyse, bucket_stats, macro_rate
from kidconsole.report.predictions import Prediction


def label_of(rows, dimension, edges=None):
    b = assign(rows, dimension, edges)
    return [b.labels[c] for c in b.codes]


def test_a_value_on_an_edge_goes_to_the_bucket_above():
    assert bin_values(np.array([9.999, 10.0, 19.9, 20.0, 30.0, 1e6, -5, np.nan]), (10, 20, 30)).tolist() == \
        [0, 1, 1, 2, 3, 3, 0, 4]
    rows = [Prediction(str(i), "A", "A", snr=v) for i, v in enumerate([9.99, 10.0, 20.0, 30.0, None])]
    assert label_of(rows, "snr") == ["<10 dB", "10-20 dB", "20-30 dB", ">=30 dB", UNKNOWN]


def test_age_groups_use_whole_years_and_ranges_use_their_middle():
    rows = [Prediction("a", "A", "A", age=4.99), Prediction("b", "A", "A", age=5),
            Prediction("c", "A", "A", age=6.9), Prediction("d", "A", "A", age_range=(10.0, 19.0)),
            Prediction("e", "A", "A")]
    assert label_of(rows, "age_group", {"age_group": (5, 7, 18)}) == ["<5", "5-6", "5-6", "7-17", UNKNOWN]
    assert label_of(rows, "age") == ["4", "5", "6", "14", UNKNOWN]


def test_duration_and_gender_buckets():
    rows = [Prediction("a", "A", "A", duration=2.0, gender="f"), Prediction("b", "A", "A", duration=1.99, gender="M"),
            Prediction("c", "A", "A", duration=8, gender=" ")]
    assert label_of(rows, "duration", {"duration": (2, 8)}) == ["2-8 s", "<2 s", ">=8 s"]
    assert label_of(rows, "gender") == ["F", "M", UNKNOWN]


def test_bad_edges_are_an_error_naming_the_option():
    with pytest.raises(KidconsoleError, match="--snr-edges"):
        parse_edges("20,10", "--snr-edges")
    with pytest.raises(KidconsoleError, match="--snr-edges"):
        parse_edges("a,b", "--snr-edges")


def test_empty_and_one_utterance_buckets():
    rows = [Prediction("a", "A G", "A", snr=5), Prediction("b", "A G", "A G", snr=5),
            Prediction("c", "N O", "N", snr=35)]
    stats = {b.label: b for b in bucket_stats(analyse(rows), "snr")}
    assert list(stats) == ["<10 dB", "10-20 dB", "20-30 dB", ">=30 dB"]  # no unknown bucket when none is unknown
    assert stats["10-20 dB"].n == 0 and math.isnan(stats["10-20 dB"].rate()) and stats["10-20 dB"].speakers == 0
    assert math.isnan(stats["10-20 dB"].op_rate(1))
    one = stats[">=30 dB"]
    assert one.n == 1 and one.rate() == 0.5 and one.members.tolist() == [2]
    assert stats["<10 dB"].rate() == 0.25


def test_macro_is_the_mean_of_the_age_groups():
    rows = [Prediction("a", "A G", "A", age=4), Prediction("b", "A G N O", "A G N O", age=4),
            Prediction("c", "N O", "N O", age=8)]
    groups = bucket_stats(analyse(rows), "age_group")
    by = {b.label: b.rate() for b in groups if b.n}
    assert by == {"<5": pytest.approx(1 / 6), "7-8": 0.0}
    assert macro_rate(groups) == pytest.approx((1 / 6 + 0) / 2)
