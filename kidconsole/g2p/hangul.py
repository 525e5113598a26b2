"""Phones -> pronounced Hangul, so that CER can count syllables.

Parsing is greedy and never fails, since it also reads model hypotheses:
- a consonant right before a vowel is that vowel's onset when it can be one;
- otherwise it closes the open syllable as its coda when it can be one;
- a vowel with no onset gets the silent onset ㅇ;
- a consonant that fits neither (a lone onset, a second coda, a coda at the
  start of a word) is written as its bare compatibility jamo (``ㄱ``), one
  character, so it still counts as one error and never matches a real syllable;
- a token that is not a phone is written as ``?``.
Words (``|``-separated) come out separated by single spaces.
"""

from __future__ import annotations

from kidconsole.phonemes import CHOSEONG, CODA_JAMO, JONGSEONG, JUNGSEONG, NUCLEUS, ONSET, WORD_SEP

UNKNOWN_CHAR = "?"

_ONSET_INDEX = {phone: CHOSEONG.index(jamo) for jamo, phone in ONSET.items() if phone}
_NUCLEUS_INDEX = {phone: JUNGSEONG.index(jamo) for jamo, phone in NUCLEUS.items()}
_CODA_INDEX = {phone: JONGSEONG.index(jamo) for phone, jamo in CODA_JAMO.items()}
_SILENT_ONSET = CHOSEONG.index("ㅇ")
# Bare jamo for consonants that fit no syllable.
_LONE_JAMO = {phone: jamo for jamo, phone in ONSET.items() if phone} | CODA_JAMO


def _syllable(onset: int, nucleus: int, coda: int) -> str:
    return chr(0xAC00 + (onset * 21 + nucleus) * 28 + coda)


def _word_to_hangul(tokens: list[str]) -> str:
    out: list[str] = []
    # The open syllable: (onset, nucleus) waiting for a possible coda.
    open_syl: tuple[int, int] | None = None

    def close(coda: int = 0) -> None:
        nonlocal open_syl
        if open_syl is not None:
            out.append(_syllable(*open_syl, coda))
            open_syl = None

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok in _NUCLEUS_INDEX:
            close()
            open_syl = (_SILENT_ONSET, _NUCLEUS_INDEX[tok])
        elif tok in _ONSET_INDEX and nxt in _NUCLEUS_INDEX:
            close()
            open_syl = (_ONSET_INDEX[tok], _NUCLEUS_INDEX[nxt])
            i += 1
        elif tok in _CODA_INDEX and open_syl is not None:
            close(_CODA_INDEX[tok])
        elif tok in _LONE_JAMO:
            close()
            out.append(_LONE_JAMO[tok])
        else:
            close()
            out.append(UNKNOWN_CHAR)
        i += 1
    close()
    return "".join(out)


def phones_to_hangul(phones: str) -> str:
    """Pronounced Hangul for space-separated phones, one space between ``|``-separated words."""
    words: list[list[str]] = [[]]
    for tok in phones.split():
        if tok == WORD_SEP:
            words.append([])
        else:
            words[-1].append(tok)
    return " ".join(_word_to_hangul(w) for w in words if w)
