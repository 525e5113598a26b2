"""The phone n-gram LM: Kneser-Ney estimates written as ARPA that KenLM loads, and the clear errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kidconsole.errors import KidconsoleError
from kidconsole.phone_lm import (BOS, EOS, UNK, arpa_unigrams, build_phone_lm, check_phone_lm, count_ngrams, estimate,
                                 info_path, write_arpa)
from kidconsole.phonemes import SYMBOLS


def read_arpa(path: Path) -> list[dict]:
    """{ngram: (log10 p, log10 backoff)} per order, read back from the file."""
    table, order = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:line.index("-")])
            table.append({})
        elif order and line.strip() and not line.startswith("\\"):
            parts = line.split("\t")
            table[order - 1][tuple(parts[1].split())] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    return table


def log10_prob(table: list[dict], word: str, history: tuple) -> float:
    """ARPA back-off: the longest listed n-gram, plus the backoff weights of the contexts skipped."""
    history = history[max(0, len(history) - (len(table) - 1)):] if len(table) > 1 else ()
    if (*history, word) in table[len(history)]:
        return table[len(history)][(*history, word)][0]
    bow = table[len(history) - 1].get(history, (0.0, 0.0))[1] if history else 0.0
    return bow + log10_prob(table, word, history[1:]) if history else table[0][(word,)][0]


def sentences(n: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    common = list(SYMBOLS[:8])
    return [[rng.choice(common) if rng.random() < 0.8 else rng.choice(SYMBOLS) for _ in range(rng.randint(2, 14))]
            for _ in range(n)]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_of_the_written_lm_sums_to_one_over_the_phone_set(tmp_path, order):
    sents = sentences(300)
    table, discounts = estimate(count_ngrams(sents, order), SYMBOLS)
    write_arpa(tmp_path / "lm.arpa", table)
    lm = read_arpa(tmp_path / "lm.arpa")
    vocab = [*SYMBOLS, EOS, UNK]
    for history in [(BOS,), tuple(sents[0][:3]), ("oE", "oE", "oE"), (BOS, sents[1][0]), ()]:
        total = sum(10 ** log10_prob(lm, w, history) for w in vocab)
        assert abs(total - 1) < 1e-4, (history, total)
    assert all(0 < d < 1 for d in discounts)


def test_seen_continuations_are_likelier_than_unseen_ones(tmp_path):
    sents = [["A", "N", "I"]] * 50 + [["G", "A", "N"]] * 5
    table, _ = estimate(count_ngrams(sents, 3), SYMBOLS)
    write_arpa(tmp_path / "lm.arpa", table)
    lm = read_arpa(tmp_path / "lm.arpa")
    assert log10_prob(lm, "I", ("A", "N")) > log10_prob(lm, "U", ("A", "N")) + 1
    assert log10_prob(lm, "oE", ("A", "N")) > -99  # every phone of the set keeps a probability


def test_an_lm_built_from_a_manifest_records_its_sources_and_skips_rows_without_phones(tmp_path):
    from kidconsole.manifest import Utterance, write_manifest

    rows = [Utterance(id=f"u{k}", audio="x.wav", duration=1.0, sample_rate=16000, speaker="s", split="train",
                      text="", phones=" ".join(s)) for k, s in enumerate(sentences(40))]
    rows.append(Utterance(id="empty", audio="x.wav", duration=1.0, sample_rate=16000, speaker="s", split="train",
                          text="", phones=""))
    rows.append(Utterance(id="alien", audio="x.wav", duration=1.0, sample_rate=16000, speaker="s", split="train",
                          text="", phones="A Q N"))
    write_manifest(tmp_path / "m.jsonl", rows)
    info = build_phone_lm([tmp_path / "m.jsonl"], tmp_path / "lm" / "phones.arpa", order=3)
    assert info.sentences == 40 and info.skipped == 2 and "Q" in " ".join(info.skipped_examples)
    record = json.loads(info_path(tmp_path / "lm" / "phones.arpa").read_text())
    assert record["order"] == 3 and record["sources"] == [str((tmp_path / "m.jsonl").resolve())]
    assert set(arpa_unigrams(tmp_path / "lm" / "phones.arpa")) == {*SYMBOLS, BOS, EOS, UNK}
    assert check_phone_lm(tmp_path / "lm" / "phones.arpa", SYMBOLS)


def test_a_missing_lm_file_is_a_clear_error(tmp_path):
    with pytest.raises(KidconsoleError, match=r"nope\.arpa: no such LM file"):
        check_phone_lm(tmp_path / "nope.arpa", SYMBOLS)
    (tmp_path / "text.arpa").write_text("hello\n")
    with pytest.raises(KidconsoleError, match=r"text\.arpa: not an ARPA language model"):
        check_phone_lm(tmp_path / "text.arpa", SYMBOLS)


def test_an_lm_over_another_phone_set_is_a_clear_error_naming_the_phones(tmp_path):
    table, _ = estimate(count_ngrams([["A", "N", "Q"], ["Q", "A"]], 2), [*SYMBOLS[:10], "Q"])
    write_arpa(tmp_path / "other.arpa", table)
    with pytest.raises(KidconsoleError) as e:
        check_phone_lm(tmp_path / "other.arpa", SYMBOLS)
    text = str(e.value)
    assert "other.arpa: phone set mismatch" in text and "(Q)" in text and "model's phones missing" in text


def test_an_lm_built_from_korean_text_counts_the_g2p_phones(tmp_path):
    (tmp_path / "text.txt").write_text("학교에 가요\n\n국민 여러분\n", encoding="utf-8")
    info = build_phone_lm([tmp_path / "text.txt"], tmp_path / "text.arpa", order=2)
    assert info.sentences == 2 and info.skipped == 0 and info.tokens >= 10
    lm = read_arpa(tmp_path / "text.arpa")
    assert ("G", "U") in lm[1] and ("k", "GG") in lm[1]  # 국민 [궁민] ... 학교 [학꾜]: the pronounced phones
