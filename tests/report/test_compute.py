import random

import pytest

from kidconsole.metrics import count_errors, error_rates, phone_tokens, syllable_tokens, word_tokens
from kidconsole.report.compute import D, H, I, S, analyse, overall_stats, rates
from kidconsole.report.predictions import Prediction


def edit_distance(a: list[str], b: list[str]) -> int:
    """Plain Levenshtein distance by dynamic programming."""
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev = cur
    return prev[-1]


def random_pairs(n: int, seed: int) -> list[Prediction]:
    rng = random.Random(seed)
    alphabet = ["A", "G", "N", "O", "k", "EU", "Ch"]  # small, so matches and near misses are frequent
    rows = []
    for i in range(n):
        def seq():
            words = [" ".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(0, 4))]
            return " | ".join(words)
        rows.append(Prediction(id=str(i), ref=seq(), hyp=seq()))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_phone_and_word_counts_equal_an_independent_edit_distance(seed):
    rows = random_pairs(300, seed)
    a = analyse(rows)
    for metric, tokens in ((0, phone_tokens), (2, word_tokens)):
        total_err = total_ref = 0
        for i, r in enumerate(rows):
            ref, hyp = tokens(r.ref), tokens(r.hyp)
            c = a.counts[i, metric]
            dist = edit_distance(ref, hyp)
            assert c[S] + c[D] + c[I] == dist
            assert c[H] + c[S] + c[D] == len(ref)
            assert c[H] + c[S] + c[I] == len(hyp)
            total_err += dist
            total_ref += len(ref)
        overall = overall_stats(a)
        assert overall.rate(["per", "cer", "wer"][metric]) == pytest.approx(total_err / total_ref)


def test_syllable_counts_equal_an_independent_edit_distance():
    rows = random_pairs(200, 3)
    a = analyse(rows)
    assert a.has_cer
    for i, r in enumerate(rows):
        ref, hyp = syllable_tokens(r.ref), syllable_tokens(r.hyp)
        c = a.counts[i, 1]
        assert c[S] + c[D] + c[I] == edit_distance(ref, hyp)
        assert c[H] + c[S] + c[D] == len(ref)


def test_totals_agree_with_the_metrics_module():
    rows = [r for r in random_pairs(200, 4) if r.ref.strip()]
    a = analyse(rows)
    c = a.counts.sum(axis=0)[0]
    ref = count_errors([phone_tokens(r.ref) for r in rows], [phone_tokens(r.hyp) for r in rows])
    assert (c[H], c[S], c[D], c[I]) == (ref.hits, ref.substitutions, ref.deletions, ref.insertions)
    expected = error_rates([r.ref for r in rows], [r.hyp for r in rows])
    overall = overall_stats(a)
    for m in ("per", "cer", "wer"):
        assert overall.rate(m) == pytest.approx(expected[m])


def test_empty_reference_counts_insertions_as_a_full_error():
    a = analyse([Prediction("x", ref="", hyp="A G"), Prediction("y", ref="", hyp="")])
    assert a.counts[0, 0].tolist() == [0, 0, 0, 2]
    assert rates(a.counts[:, 0]).tolist() == [1.0, 0.0]


def test_error_positions_follow_word_boundaries():
    a = analyse([Prediction("x", ref="G A N | O | M U k", hyp="A N | | M E k")])
    assert a.ref_pos.tolist() == [0, 1, 2, 0, 0, 1, 2]  # a one-phone word counts as initial
    errors = sorted(zip(a.err_op.tolist(), a.err_ref.tolist(), a.err_pos.tolist()))
    G, O, U = (a.vocab.index(p) for p in ("G", "O", "U"))
    assert errors == sorted([(D, G, 0), (D, O, 0), (S, U, 1)])
