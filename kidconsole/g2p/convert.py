"""Pronounced Hangul (g2pK's output) -> phones.

Each syllable is split into jamo and mapped with the tables of
:mod:`kidconsole.phonemes`; the coda table does coda neutralisation and
cluster simplification. Punctuation is non-speech: it is dropped and separates
words like a space. Any other character (Latin left over, Chinese characters,
bare jamo, symbols) is collected and reported, never dropped.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from kidconsole.g2p.errors import G2PError
from kidconsole.phonemes import CHOSEONG, CODA, JONGSEONG, JUNGSEONG, NUCLEUS, ONSET, WORD_SEP

_SYL_FIRST, _SYL_LAST = 0xAC00, 0xD7A3
# Punctuation that may carry markup or be spoken is reported, not dropped.
_REPORTED_PUNCT = frozenset("()[]{}/\\*#@&%<>")
_PUNCT_CATEGORIES = frozenset({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"})


def is_dropped_punctuation(ch: str) -> bool:
    """True for punctuation that is simply not speech (. , ? ! ~ quotes, dashes ...)."""
    if ch in _REPORTED_PUNCT:
        return False
    return ch in "~\uff5e" or unicodedata.category(ch) in _PUNCT_CATEGORIES


@lru_cache(maxsize=None)
def syllable_phones(syllable: str) -> tuple[str, ...]:
    """The phones of one precomposed Hangul syllable."""
    index = ord(syllable) - _SYL_FIRST
    onset, rest = divmod(index, 21 * 28)
    nucleus, coda = divmod(rest, 28)
    phones = [ONSET[CHOSEONG[onset]], NUCLEUS[JUNGSEONG[nucleus]]]
    if coda:
        phones.append(CODA[JONGSEONG[coda]])
    return tuple(p for p in phones if p)


def pronounced_to_phones(pronounced: str) -> tuple[str, list[str]]:
    """(phones, unmappable characters in order of appearance, each once)."""
    words: list[list[str]] = [[]]
    bad: list[str] = []
    for ch in pronounced:
        if _SYL_FIRST <= ord(ch) <= _SYL_LAST:
            words[-1].extend(syllable_phones(ch))
        elif ch.isspace() or is_dropped_punctuation(ch):
            if words[-1]:
                words.append([])
        elif ch not in bad:
            bad.append(ch)
    return f" {WORD_SEP} ".join(" ".join(w) for w in words if w), bad


def describe_chars(chars: list[str]) -> str:
    return ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in chars)


def hangul_to_phones(pronounced: str) -> str:
    """Phones of already-pronounced Hangul (no pronunciation rules applied).

    Raises :class:`G2PError` naming the text and any character it cannot map.
    """
    phones, bad = pronounced_to_phones(pronounced)
    if bad:
        raise G2PError(f"cannot map {describe_chars(bad)} in {pronounced!r}")
    return phones
