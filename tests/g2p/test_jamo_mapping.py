"""Every onset, nucleus and coda maps to the phone of shared/phonemes.md's tables."""

import pytest

from kidconsole.g2p import G2PError, hangul_to_phones

# The tables of phonemes.md, written out here independently of kidconsole.phonemes.
ONSETS = dict(zip("ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅈㅉㅊㅋㅌㅍㅎ",
                  "G GG N D DD R M B BB S SS J JJ Ch Kh Th Ph H".split()))
NUCLEI = dict(zip("ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ",
                  "A AE iA iAE EO E iEO iE O oA oAE oE iO U uEO uE uI iU EU euI I".split()))
CODA_SOUNDS = {"k": "ㄱㄲㅋㄳㄺ", "N": "ㄴㄵㄶ", "t": "ㄷㅅㅆㅈㅊㅌㅎ", "L": "ㄹㄼㄽㄾㅀ",
               "M": "ㅁㄻ", "p": "ㅂㅍㄿㅄ", "NG": "ㅇ"}
CODAS = {jamo: phone for phone, jamos in CODA_SOUNDS.items() for jamo in jamos}

CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
JONG = ["", *"ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"]


def compose(onset: str, nucleus: str, coda: str = "") -> str:
    return chr(0xAC00 + (CHO.index(onset) * 21 + JUNG.index(nucleus)) * 28 + JONG.index(coda))


def test_tables_cover_every_jamo_of_unicode_hangul():
    assert set(ONSETS) | {"ㅇ"} == set(CHO)
    assert set(NUCLEI) == set(JUNG)
    assert set(CODAS) == set(JONG[1:])


@pytest.mark.parametrize("onset", list(ONSETS))
def test_each_onset_maps_to_its_phone(onset):
    assert hangul_to_phones(compose(onset, "ㅏ")) == f"{ONSETS[onset]} A"


def test_silent_onset_maps_to_no_phone():
    assert hangul_to_phones(compose("ㅇ", "ㅏ")) == "A"


@pytest.mark.parametrize("nucleus", list(NUCLEI))
def test_each_nucleus_maps_to_its_phone(nucleus):
    assert hangul_to_phones(compose("ㅇ", nucleus)) == NUCLEI[nucleus]


@pytest.mark.parametrize("coda", list(CODAS))
def test_each_coda_is_neutralised_to_one_of_seven_sounds(coda):
    assert hangul_to_phones(compose("ㅁ", "ㅏ", coda)) == f"M A {CODAS[coda]}"


def test_words_are_separated_by_bar_and_punctuation_is_dropped():
    assert hangul_to_phones("소늘  잡꼬.") == "S O N EU L | J A p GG O"
    assert hangul_to_phones("네,그래!") == "N E | G EU R AE"
    assert hangul_to_phones("\u201c아\u201d ~ ...") == "A"


@pytest.mark.parametrize("text, culprit", [
    ("ㅋㅋ 좋아", "'ㅋ' (U+314B)"),        # bare compatibility jamo
    ("漢字", "'漢' (U+6F22)"),
    ("abc", "'a' (U+0061)"),
    ("가(나", "'(' (U+0028)"),             # unresolved markup is reported, not dropped
    ("가/나", "'/' (U+002F)"),
    ("아 ♡", "'♡' (U+2661)"),
])
def test_unmappable_characters_are_reported_with_the_text(text, culprit):
    with pytest.raises(G2PError) as err:
        hangul_to_phones(text)
    assert culprit in str(err.value)
    assert repr(text) in str(err.value)
