"""`kidconsole g2p` as users run it."""

import os
import subprocess
import sys


def kidconsole(*args, cache, stdin=None):
    env = dict(os.environ, KIDCONSOLE_G2P_CACHE=str(cache))
    return subprocess.run([sys.executable, "-m", "kidconsole", "g2p", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def test_text_argument_prints_its_phones(cache_path):
    done = kidconsole("나는 부자가 되고 싶어", cache=cache_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "N A N EU N | B U J A G A | D oE G O | S I Ph EO\n"


def test_file_gives_one_line_per_input_line_in_order(cache_path, tmp_path):
    src = tmp_path / "transcripts.txt"
    src.write_text("학교\nㅋㅋ 좋아\n\n(2)/(두) 개\n학교\n", encoding="utf-8")
    done = kidconsole("--file", str(src), "-j", "1", cache=cache_path)
    assert done.stdout.split("\n") == ["H A k GG iO", "", "", "D U | G AE", "H A k GG iO", ""]
    assert "line 2: transcript 'ㅋㅋ 좋아': cannot map 'ㅋ'" in done.stderr
    assert "line 3: transcript '': nothing to pronounce" in done.stderr
    assert done.returncode == 1


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_still_converted(cache_path, tmp_path):
    src = tmp_path / "transcripts.txt"
    src.write_bytes("학교\n".encode() + b"\xff\xfe bad\n" + "좋아\n".encode())
    done = kidconsole("--file", str(src), "-j", "1", cache=cache_path)
    assert done.stdout.split("\n") == ["H A k GG iO", "", "J O A", ""]
    assert "line 2: transcript '\ufffd\ufffd bad': not UTF-8" in done.stderr
    assert done.returncode == 1


def test_stdin_and_pronounced_hangul(cache_path):
    done = kidconsole("--file", "-", "--hangul", cache=cache_path, stdin="손을 잡고\n")
    assert done.stdout == "S O N EU L | J A p GG O\t소늘 잡꼬\n"


def test_missing_file_is_named(cache_path, tmp_path):
    done = kidconsole("--file", str(tmp_path / "nope.txt"), cache=cache_path)
    assert done.returncode == 2 and "nope.txt" in done.stderr


def test_two_commands_share_one_cache_file(cache_path, tmp_path):
    import sqlite3

    env = dict(os.environ, KIDCONSOLE_G2P_CACHE=str(cache_path))
    procs = []
    for part in range(2):
        src = tmp_path / f"part{part}.txt"
        src.write_text("".join(f"학교 {part * 100 + i}\n" for i in range(120)), encoding="utf-8")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "kidconsole", "g2p", "--file", str(src), "-j", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(len(out.splitlines()) == 120 for out, _ in outs)
    with sqlite3.connect(cache_path) as db:
        assert db.execute("SELECT COUNT(*) FROM g2p").fetchone()[0] == 220  # 100..119 shared
