"""Offline Korean G2P: transcript -> pronounced Hangul (g2pK) -> phones, and back.

Light at import: g2pK (and its MeCab) loads on the first conversion.
"""

from kidconsole.g2p.batch import convert_many
from kidconsole.g2p.cache import G2PCache, conversion_version, default_cache_path
from kidconsole.g2p.convert import hangul_to_phones
from kidconsole.g2p.errors import G2PError
from kidconsole.g2p.hangul import phones_to_hangul
from kidconsole.g2p.normalize import normalize_transcript
from kidconsole.g2p.transcript import G2PResult, text_to_phones

__all__ = [
    "G2PCache", "G2PError", "G2PResult", "conversion_version", "convert_many",
    "default_cache_path", "hangul_to_phones", "normalize_transcript", "phones_to_hangul",
    "text_to_phones",
]
