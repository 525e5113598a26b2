"""g2pK loads with no NLTK data and no network, and leaves NLTK as it found it."""

import os
import subprocess
import sys

SCRIPT = """
import nltk, nltk.corpus
download, find = nltk.download, nltk.data.find
calls = []
nltk.download = lambda *a, **k: calls.append(a)
download = nltk.download
from kidconsole.g2p.engine import pronounce
print(pronounce("hello 학교"))
assert nltk.download is download and nltk.data.find is find, "NLTK not restored"
assert not calls, calls
assert type(nltk.corpus.cmudict).__name__ == "LazyCorpusLoader"
"""


def test_g2pk_loads_without_nltk_data_or_download(tmp_path):
    env = dict(os.environ, NLTK_DATA=str(tmp_path), HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "헐로 학꾜"
