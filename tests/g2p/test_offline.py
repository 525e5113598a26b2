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


def test_precompiled_g2pk_matches_stock_g2pk():
    from kidconsole.g2p.engine import _import_g2pk_offline, pronounce

    stock = _import_g2pk_offline().G2p()
    sentences = ["나의 친구가 mp3 file 3개를 다운받고 있다", "의견란 임진란 생산량 결단력",
                 "2024년 10월 3일에 학교에 갔어요", "닭을 잡고 흙을 밟았다",
                 "같이 놓아 좋고 많다 싫어 읽어 없다", "3학년 ABC 선생님께서 편지를 읽고 싶어"]
    assert [pronounce(s) for s in sentences] == [stock(s) for s in sentences]
