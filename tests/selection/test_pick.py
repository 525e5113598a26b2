"""Picking the hardest hours: every age x SNR stratum served, no speaker over the cap, the hours asked."""

from __future__ import annotations

import numpy as np
import pytest

from kidconsole.subset.strata import Strata
from trainers.select import Scored, _ranks, _strata, correlations, pick


def _pool(n: int = 600, seed: int = 0) -> list[Scored]:
    """Ages 5-10, SNRs 5-35 dB, 20 speakers; the hardest utterances all from one speaker of one stratum."""
    rng = np.random.default_rng(seed)
    items = []
    for k in range(n):
        spk = f"s{k % 20}"
        conf = 0.05 if spk == "s0" and k % 40 == 0 else float(rng.uniform(0.3, 0.99))
        items.append(Scored(f"u{k:04d}", float(rng.uniform(1.0, 5.0)), spk, float(5 + k % 6),
                            float(5 + (k // 6) % 4 * 10), conf))
    return items


def test_pick_is_stratified_in_proportion_to_the_pool():
    pool = _pool()
    hours = sum(s.duration for s in pool) / 3600 / 4
    picked = pick(pool, hours)
    codes, _ = _strata(pool, Strata())
    by_id = {s.id: c for s, c in zip(pool, codes)}
    pool_h = {c: sum(s.duration for s, k in zip(pool, codes) if k == c) for c in set(codes)}
    picked_h = {c: sum(s.duration for s in picked if by_id[s.id] == c) for c in set(codes)}
    assert sum(s.duration for s in picked) == pytest.approx(hours * 3600, abs=5.0)
    longest = max(s.duration for s in pool)
    for c in pool_h:  # every stratum gets its share of the hours, to within an utterance each way
        assert picked_h[c] > 0
        assert abs(picked_h[c] - hours * 3600 * pool_h[c] / sum(pool_h.values())) <= 2 * longest


def test_pick_takes_the_least_confident_first_within_a_stratum():
    pool = _pool()
    for s in pool:  # equal lengths: no utterance is passed over for not fitting the quota
        s.duration = 2.0
    picked = {s.id for s in pick(pool, sum(s.duration for s in pool) / 3600 / 4, speaker_hours=1.0)}
    codes, _ = _strata(pool, Strata())
    for c in set(codes):
        members = [s for s, k in zip(pool, codes) if k == c]
        chosen = [s.confidence for s in members if s.id in picked]
        left = [s.confidence for s in members if s.id not in picked]
        assert chosen and left and max(chosen) <= min(left)


def test_pick_caps_each_speaker():
    pool = _pool()
    # one speaker holds every hard utterance: hardness alone would take all of them
    for s in pool:
        if s.speaker == "s0":
            s.confidence = 0.01
    hours = sum(s.duration for s in pool) / 3600 / 4
    cap = hours / 10
    picked = pick(pool, hours, speaker_hours=cap)
    per_speaker: dict[str, float] = {}
    for s in picked:
        per_speaker[s.speaker] = per_speaker.get(s.speaker, 0.0) + s.duration
    assert max(per_speaker.values()) <= cap * 3600
    assert per_speaker["s0"] > 0.8 * cap * 3600   # the hard speaker is taken up to the cap
    assert len(per_speaker) == 20


def test_pick_by_loss_ranks_by_loss_and_puts_unlabelled_last():
    pool = [Scored(f"u{k}", 2.0, f"s{k}", 6.0, 25.0, 0.5, loss=float(k) if k < 8 else None) for k in range(10)]
    picked = pick(pool, 4 * 2.0 / 3600, speaker_hours=1.0, by="loss")
    assert [s.id for s in picked] == ["u7", "u6", "u5", "u4"]


def test_pick_by_phone_confidence_ranks_by_it_and_puts_unscored_last():
    # the frame mean says the opposite: a decode of few, unsure phones among sure blank frames
    pool = [Scored(f"u{k}", 2.0, f"s{k}", 6.0, 25.0, 0.9 + k / 100, phone_confidence=k / 10 if k < 8 else None)
            for k in range(10)]
    picked = pick(pool, 4 * 2.0 / 3600, speaker_hours=1.0, by="phone-confidence")
    assert [s.id for s in picked] == ["u0", "u1", "u2", "u3"]


def test_an_empty_decode_has_phone_confidence_zero_and_a_decode_the_mean_of_its_phones():
    from trainers.confidence import Score

    empty = Score("a", 0.99, None, None, "", [], 1.0)
    two = Score("b", 0.99, None, None, "a b", [0.5, 0.75], 1.0)
    assert empty.record()["phone_confidence"] == 0.0 and two.record()["phone_confidence"] == 0.625


def test_correlation_uses_tied_ranks():
    assert list(_ranks(np.array([3.0, 1.0, 1.0, 2.0]))) == [3.0, 0.5, 0.5, 2.0]
    pool = [Scored(f"u{k}", 1.0, "s", 6.0, 20.0, 1.0 - k / 10, per=k / 10) for k in range(10)]
    c = correlations(pool)
    assert c["labelled_utterances"] == 10 and c["spearman_confidence_per"] == pytest.approx(-1.0)
