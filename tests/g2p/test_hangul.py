"""Phones -> pronounced Hangul, for CER on syllables."""

import random

import pytest

from kidconsole.g2p import hangul_to_phones, phones_to_hangul


@pytest.mark.parametrize("phones, hangul", [
    ("S O N EU L | J A p GG O", "소늘 잡꼬"),
    ("H A N G U G EO", "한구거"),
    ("G U NG M I N", "궁민"),
    ("H A k GG iO", "학꾜"),
    ("A N A", "아나"),          # a consonant before a vowel is its onset
    ("A NG A", "앙아"),         # NG is never an onset
    ("D A L G EU L", "달글"),
])
def test_valid_sequences_compose_to_syllables(phones, hangul):
    assert phones_to_hangul(phones) == hangul


@pytest.mark.parametrize("phones, hangul", [
    ("A", "아"),                 # vowel with no onset gets ㅇ
    ("G", "ㄱ"),                 # lone onset: its bare jamo
    ("S A S", "사ㅅ"),           # onset-only consonant after a vowel, nothing after
    ("k A", "ㄱ아"),             # coda at the start of a word
    ("A k t", "악ㄷ"),           # second coda
    ("A L L A", "알ㄹ아"),
    ("NG", "ㅇ"),
    ("<unk> A xx", "?아?"),      # not a phone at all
    ("| | A | | I |", "아 이"),  # stray word separators
    ("", ""),
])
def test_malformed_sequences_have_a_defined_output(phones, hangul):
    assert phones_to_hangul(phones) == hangul


def test_malformed_output_keeps_one_character_per_stray_phone():
    # CER must count each stray consonant, never drop it
    assert len(phones_to_hangul("G G G").replace(" ", "")) == 3


def test_round_trip_phones_hangul_phones_on_valid_sequences():
    rng = random.Random(7)
    syllables = [chr(rng.randrange(0xAC00, 0xD7A4)) for _ in range(3000)]
    words = ["".join(syllables[i:i + rng.randint(1, 6)]) for i in range(0, 3000, 6)]
    for start in range(0, len(words), 5):
        phones = hangul_to_phones(" ".join(words[start:start + 5]))
        assert hangul_to_phones(phones_to_hangul(phones)) == phones


def test_every_single_syllable_round_trips():
    for code in range(0xAC00, 0xD7A4):
        phones = hangul_to_phones(chr(code))
        assert hangul_to_phones(phones_to_hangul(phones)) == phones
