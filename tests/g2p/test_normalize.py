"""AI Hub transcript markup."""

import unicodedata

import pytest

from kidconsole.g2p import normalize_transcript


@pytest.mark.parametrize("raw, clean", [
    ("(3)/(세) 개", "세 개"),
    ("(70%)/(칠십 퍼센트) 할인", "칠십 퍼센트 할인"),
    ("(PC방)/(피씨방)에 가요", "피씨방에 가요"),
    ("b/ 안녕 n/", "안녕"),
    ("l/ o/ 그래 u/", "그래"),
    ("n/안녕", "안녕"),
    ("*학교* 가요", "학교 가요"),
    ("음/ 그러니까/ 가요", "음 그러니까 가요"),
    ("  나는\t부자\n", "나는 부자"),
])
def test_markup_is_resolved(raw, clean):
    assert normalize_transcript(raw) == clean


def test_decomposed_hangul_is_composed():
    assert normalize_transcript(unicodedata.normalize("NFD", "학교")) == "학교"


@pytest.mark.parametrize("raw", ["가(나", "a/b", "email/", "[웃음] 가요", "Bob/ 가"])
def test_unknown_markup_is_left_for_the_conversion_to_report(raw):
    # only whitespace may change: nothing is guessed away
    assert normalize_transcript(raw).replace(" ", "") == raw.replace(" ", "")


def test_latin_words_and_digits_are_kept_for_g2pk():
    assert normalize_transcript("ABC 3학년 nob/") == "ABC 3학년 nob/"


def test_fullwidth_forms_become_ascii_and_invisible_characters_go():
    assert normalize_transcript("ＡＢＣ １２３") == "ABC 123"
    assert normalize_transcript("가\u200b나\ufeff") == "가나"
    assert normalize_transcript("（학교）／（학꾜）") == "학꾜"


def test_control_characters_are_kept_for_the_conversion_to_report():
    assert normalize_transcript("\x00가") == "\x00가"
