"""Each pronunciation rule family, checked against the standard pronunciation
(표준 발음법): the transcript's phones equal the phones of how it is said."""

import pytest

from kidconsole.g2p import G2PError, hangul_to_phones, text_to_phones

RULES = {
    "liaison": [("한국어", "한구거"), ("옷이", "오시"), ("닭을", "달글"), ("읽어", "일거"),
                ("꽃을", "꼬츨"), ("밖에", "바께")],
    "nasalisation": [("국민", "궁민"), ("밥물", "밤물"), ("닫는", "단는"), ("먹는", "멍는"),
                     ("종로", "종노"), ("심리", "심니")],
    "lateralisation": [("신라", "실라"), ("칼날", "칼랄"), ("난로", "날로"), ("물난리", "물랄리")],
    "tensing": [("학교", "학꾜"), ("잡고", "잡꼬"), ("국밥", "국빱"), ("있다", "읻따")],
    "palatalisation": [("같이", "가치"), ("굳이", "구지"), ("해돋이", "해도지"), ("굳히다", "구치다")],
    "aspiration": [("좋고", "조코"), ("축하", "추카"), ("입학", "이팍"), ("놓다", "노타"),
                   ("많다", "만타")],
    "h_deletion": [("놓아", "노아"), ("좋은", "조은"), ("많아", "마나"), ("싫어", "시러")],
    "cluster_simplification": [("닭", "닥"), ("값", "갑"), ("앉다", "안따"), ("읽다", "익따"),
                               ("밟다", "밥따"), ("넓다", "널따"), ("삶", "삼"), ("여덟", "여덜"),
                               ("없다", "업따"), ("흙", "흑"), ("맑다", "막따")],
    "coda_neutralisation": [("옷", "옫"), ("낮", "낟"), ("꽃", "꼳"), ("앞", "압"), ("부엌", "부억")],
}
CASES = [pytest.param(word, said, id=f"{rule}-{word}")
         for rule, pairs in RULES.items() for word, said in pairs]


@pytest.mark.parametrize("word, said", CASES)
def test_rule_gives_the_standard_pronunciation(word, said):
    assert text_to_phones(word) == hangul_to_phones(said)


@pytest.mark.parametrize("text, phones", [
    ("한국어", "H A N G U G EO"),
    ("국민", "G U NG M I N"),
    ("손을 잡고", "S O N EU L | J A p GG O"),
    ("학교", "H A k GG iO"),
    ("나는 부자가 되고 싶어", "N A N EU N | B U J A G A | D oE G O | S I Ph EO"),
])
def test_documented_examples(text, phones):
    assert text_to_phones(text) == phones


def test_digits_and_latin_letters_are_spelled_out_by_g2pk():
    assert text_to_phones("3학년 ABC") == hangul_to_phones("삼항녀 네이비시")
    assert text_to_phones("10살") == hangul_to_phones("열살")


def test_transcript_markup_is_resolved_before_conversion():
    assert text_to_phones("b/ (2)/(두) 개 *주세요*.") == hangul_to_phones("두 개 주세요")


@pytest.mark.parametrize("text, culprit", [
    ("ㅋㅋ 좋아", "'ㅋ'"), ("學校 가자", "'學'"), ("xyzq 가자", "'x'"), ("가 + 나", "'+'"),
])
def test_unconvertible_transcript_names_itself_and_the_character(text, culprit):
    with pytest.raises(G2PError) as err:
        text_to_phones(text)
    assert repr(text) in str(err.value) and culprit in str(err.value)


def test_transcript_with_no_speech_is_reported():
    with pytest.raises(G2PError, match="nothing to pronounce"):
        text_to_phones("b/ n/ ...")
