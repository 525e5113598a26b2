"""Transcript -> phones: normalise, apply g2pK, map the pronounced Hangul."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from kidconsole.g2p.convert import describe_chars, pronounced_to_phones
from kidconsole.g2p.errors import G2PError
from kidconsole.g2p.normalize import normalize_transcript

NOTHING_TO_PRONOUNCE = "nothing to pronounce"


class G2PResult(NamedTuple):
    phones: str | None
    error: str | None


def convert_normalized(text: str) -> tuple[str | None, str | None]:
    """(phones, None) or (None, reason) for a normalised transcript; never raises for bad input."""
    if not text:
        return None, NOTHING_TO_PRONOUNCE
    from kidconsole.g2p.engine import pronounce

    try:
        pronounced = pronounce(text)
    except G2PError:
        raise  # g2pK itself cannot load: not a fault of this transcript
    except Exception as e:  # g2pK/MeCab on odd input: one bad transcript, not a dead batch
        return None, f"g2pK failed: {type(e).__name__}: {e}"
    phones, bad = pronounced_to_phones(pronounced)
    if bad:
        return None, f"cannot map {describe_chars(bad)} (pronounced {pronounced!r})"
    if not phones:
        return None, NOTHING_TO_PRONOUNCE
    return phones, None


def describe_failure(transcript: str, reason: str) -> str:
    return f"transcript {transcript!r}: {reason}"


@lru_cache(maxsize=65536)
def _cached(normalized: str) -> tuple[str | None, str | None]:
    return convert_normalized(normalized)


def text_to_phones(text: str) -> str:
    """Phones for one transcript: space-separated, `` | `` between words.

    Raises :class:`G2PError` naming the transcript and the characters it cannot map.
    """
    phones, reason = _cached(normalize_transcript(text))
    if reason is not None:
        raise G2PError(describe_failure(text, reason))
    return phones
