"""The phone inventory: the single source of truth for the CTC vocabulary.

44 phones plus the word separator ``|`` (45 symbols), after
``shared/phonemes.md``; the CTC blank/padding and unknown tokens come on top.
The trainer writes its tokenizer ``vocab.json`` from :func:`vocab`.
"""

from __future__ import annotations

PAD = "<pad>"  # also the CTC blank: transformers' Wav2Vec2ForCTC uses pad_token_id as blank
UNK = "<unk>"
WORD_SEP = "|"

# Hangul syllable decomposition order (Unicode): 19 onsets, 21 nuclei, 28 codas (0 = none).
CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
JUNGSEONG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
JONGSEONG = ("", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ",
             "ㄿ", "ㅀ", "ㅁ", "ㅂ", "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ")

# Onsets: ㅇ as an onset is silent (maps to no phone).
ONSET = {
    "ㄱ": "G", "ㄲ": "GG", "ㄴ": "N", "ㄷ": "D", "ㄸ": "DD", "ㄹ": "R", "ㅁ": "M",
    "ㅂ": "B", "ㅃ": "BB", "ㅅ": "S", "ㅆ": "SS", "ㅇ": "", "ㅈ": "J", "ㅉ": "JJ",
    "ㅊ": "Ch", "ㅋ": "Kh", "ㅌ": "Th", "ㅍ": "Ph", "ㅎ": "H",
}
NUCLEUS = {
    "ㅏ": "A", "ㅐ": "AE", "ㅑ": "iA", "ㅒ": "iAE", "ㅓ": "EO", "ㅔ": "E", "ㅕ": "iEO",
    "ㅖ": "iE", "ㅗ": "O", "ㅘ": "oA", "ㅙ": "oAE", "ㅚ": "oE", "ㅛ": "iO", "ㅜ": "U",
    "ㅝ": "uEO", "ㅞ": "uE", "ㅟ": "uI", "ㅠ": "iU", "ㅡ": "EU", "ㅢ": "euI", "ㅣ": "I",
}
# Coda neutralisation and cluster simplification: only 7 coda sounds remain.
CODA = {
    "ㄱ": "k", "ㄲ": "k", "ㅋ": "k", "ㄳ": "k", "ㄺ": "k",
    "ㄴ": "N", "ㄵ": "N", "ㄶ": "N",
    "ㄷ": "t", "ㅅ": "t", "ㅆ": "t", "ㅈ": "t", "ㅊ": "t", "ㅌ": "t", "ㅎ": "t",
    "ㄹ": "L", "ㄼ": "L", "ㄽ": "L", "ㄾ": "L", "ㅀ": "L",
    "ㅁ": "M", "ㄻ": "M",
    "ㅂ": "p", "ㅍ": "p", "ㄿ": "p", "ㅄ": "p",
    "ㅇ": "NG",
}
# The jamo a coda phone is written with when phones are composed back to Hangul.
CODA_JAMO = {"k": "ㄱ", "N": "ㄴ", "t": "ㄷ", "L": "ㄹ", "M": "ㅁ", "p": "ㅂ", "NG": "ㅇ"}

ONSET_PHONES = tuple(p for p in ONSET.values() if p)          # 18
NUCLEUS_PHONES = tuple(NUCLEUS.values())                      # 21
CODA_ONLY_PHONES = ("k", "t", "L", "p", "NG")                 # N and M are shared with onsets
PHONES = ONSET_PHONES + NUCLEUS_PHONES + CODA_ONLY_PHONES     # 44
SYMBOLS = PHONES + (WORD_SEP,)                                # 45
CODA_PHONES = tuple(CODA_JAMO)

assert len(PHONES) == 44 and len(set(PHONES)) == 44
assert set(CODA.values()) == set(CODA_PHONES)


def vocab() -> dict[str, int]:
    """Token -> id for the CTC head: blank/pad 0, unknown 1, ``|`` 2, then the phones."""
    tokens = (PAD, UNK, WORD_SEP) + PHONES
    return {tok: i for i, tok in enumerate(tokens)}


def is_vowel(phone: str) -> bool:
    return phone in NUCLEUS_PHONES
