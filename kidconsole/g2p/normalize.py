"""AI Hub transcript markup -> plain text for the G2P.

Rules (see docs/g2p.md):
- Unicode NFC (transcripts written on some systems come decomposed).
- Fullwidth ASCII forms (``ＡＢＣ １２３``) become ASCII; invisible format
  characters (zero-width spaces, BOM, direction marks) are dropped.
- ``(spelling)/(pronunciation)`` -> the pronunciation side.
- Noise and event tags ``b/ l/ o/ n/ u/`` (breath, laughter, overlap, noise,
  unintelligible) are dropped: they are not speech a phone target can hold.
- ``*`` (unclear word) is dropped; the word itself is kept.
- A filler word marked with a trailing slash (``음/``) keeps the word, not the slash.
- Runs of whitespace become one space.

Anything else is left as it is, so that the conversion reports what it could
not interpret (a stray ``(`` or ``/``, an unknown tag) instead of guessing.
"""

from __future__ import annotations

import re
import unicodedata

_DUAL = re.compile(r"\(([^()]*)\)\s*/\s*\(([^()]*)\)")
_TAG = re.compile(r"(?<![A-Za-z])[blonu]/")
_FILLER_SLASH = re.compile(r"(?<=[\uac00-\ud7a3])/")
_INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\ufeff"
_ODD_FORMS = re.compile(f"[\uff01-\uff5e{_INVISIBLE}]")
_TO_PLAIN = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | dict.fromkeys(map(ord, _INVISIBLE))


def normalize_transcript(text: str) -> str:
    """The transcript with AI Hub markup resolved, ready for g2pK (also the cache key)."""
    # The checks skip work on the common plain transcript: warm-cache batches
    # spend most of their time here.
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if _ODD_FORMS.search(text):
        text = text.translate(_TO_PLAIN)
    if "/" in text:
        text = _TAG.sub(" ", _DUAL.sub(r"\2", text))
    if "*" in text:
        text = text.replace("*", "")
    if "/" in text:
        text = _FILLER_SLASH.sub("", text)
    return " ".join(text.split())
