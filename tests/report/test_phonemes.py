import pytest

from kidconsole.report.compute import analyse
from kidconsole.report.phonemes import EPS, confusion, phone_stats, position_stats, weakest
from kidconsole.report.predictions import Prediction

ROWS = [Prediction("a", "G A N | O", "A N"),        # G and O deleted, both word-initial
        Prediction("b", "G A N", "G E N"),          # A -> E, medial
        Prediction("c", "G A", "G A k")]            # k inserted


def test_per_phone_rates_count_substitutions_and_deletions_of_each_reference_phone():
    stats = {p.phone: p for p in phone_stats(analyse(ROWS))}
    assert (stats["G"].count, stats["G"].deleted, stats["G"].error_rate) == (3, 1, pytest.approx(1 / 3))
    assert (stats["A"].count, stats["A"].substituted) == (3, 1)
    assert (stats["O"].count, stats["O"].error_rate) == (1, 1.0)
    assert (stats["k"].count, stats["k"].inserted) == (0, 1)
    assert [p.phone for p in weakest(list(stats.values()), k=2, min_count=1)] == ["O", "A"]


def test_confusion_matrix_rows_sum_to_reference_counts():
    a = analyse(ROWS)
    conf = confusion(a)
    assert conf.labels[-1] == EPS and set(conf.labels) == {"G", "N", "A", "E", "O", "k", EPS}
    idx = {p: i for i, p in enumerate(conf.labels)}
    for p in phone_stats(a):
        if p.count:
            assert conf.matrix[idx[p.phone]].sum() == p.count
    assert conf.matrix[idx["A"], idx["E"]] == 1 and conf.matrix[idx["G"], idx[EPS]] == 1
    assert conf.matrix[idx[EPS], idx["k"]] == 1
    pairs = conf.pairs(10)
    assert ("G", EPS, 1, pytest.approx(1 / 3)) in pairs and len(pairs) == 4


def test_errors_by_position_show_word_initial_drops():
    pos = {p.position: p for p in position_stats(analyse(ROWS))}
    assert (pos["initial"].count, pos["initial"].deleted) == (4, 2)
    assert (pos["medial"].count, pos["medial"].substituted) == (2, 1)
    assert pos["final"].count == 3 and pos["final"].error_rate == 0


def test_phone_figures_of_a_bucket_use_only_its_utterances():
    a = analyse(ROWS)
    stats = {p.phone: p for p in phone_stats(a, members=[1])}
    assert set(stats) == {"G", "A", "N"} and stats["A"].substituted == 1 and stats["G"].deleted == 0
