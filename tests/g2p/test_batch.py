"""convert_many: order, dedupe, the persistent cache, processes."""

import sqlite3

import pytest

from kidconsole.errors import KidconsoleError
from kidconsole.g2p import G2PCache, G2PResult, conversion_version, convert_many, text_to_phones


def cached_texts(path):
    with sqlite3.connect(path) as db:
        return sorted(t for (t,) in db.execute("SELECT text FROM g2p"))


def test_results_follow_input_order_with_failures_in_place(cache_path):
    texts = ["손을 잡고", "ㅋㅋ", "학교", "", "손을 잡고"]
    results = convert_many(texts, processes=1, progress=False)
    assert results[0] == results[4] == G2PResult("S O N EU L | J A p GG O", None)
    assert results[2] == G2PResult("H A k GG iO", None)
    assert results[1].phones is None and "'ㅋ'" in results[1].error
    assert results[3].phones is None and "nothing to pronounce" in results[3].error


def test_transcripts_equal_after_normalisation_are_converted_once(cache_path):
    convert_many(["학교", "*학교*", "b/ 학교", "학교"], processes=1, progress=False)
    assert cached_texts(cache_path) == ["학교"]


def test_failures_name_the_original_transcript(cache_path):
    [result] = convert_many(["n/ 漢"], processes=1, progress=False)
    assert result.error.startswith("transcript 'n/ 漢'") and "'漢'" in result.error


def test_warm_cache_answers_without_converting(cache_path):
    convert_many(["학교"], progress=False)
    # An entry only the cache can know proves the lookup reads it.
    with G2PCache(cache_path) as cache:
        cache.put_many([("학교", "X Y", None)])
    assert convert_many(["학교"], progress=False) == [G2PResult("X Y", None)]


def test_cache_of_another_conversion_version_is_not_used(cache_path):
    with G2PCache(cache_path, version="rules-0/old") as cache:
        cache.put_many([("학교", "X Y", None)])
    assert convert_many(["학교"], progress=False) == [G2PResult("H A k GG iO", None)]
    with G2PCache(cache_path) as cache:
        assert cache.version == conversion_version() and len(cache) == 1


def test_no_cache_leaves_no_file(cache_path):
    convert_many(["학교"], cache=False, progress=False)
    assert not cache_path.exists()


def test_explicit_cache_path_is_created(tmp_path):
    path = tmp_path / "deep" / "dir" / "cache.sqlite"
    convert_many(["학교"], cache=path, progress=False)
    assert cached_texts(path) == ["학교"]


def test_unwritable_cache_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KidconsoleError) as err:
        convert_many(["학교"], cache=blocker / "cache.sqlite", progress=False)
    assert str(blocker) in str(err.value)


@pytest.mark.slow
def test_worker_processes_give_the_same_results_as_one(cache_path, tmp_path):
    words = ["학교", "국민", "신라", "같이", "좋고", "닭을", "없다", "놓아", "많다", "꽃을"]
    texts = [f"{a} {b}" for a in words for b in words]  # 100 distinct transcripts
    texts += ["ㅋㅋ", texts[0]]
    results = convert_many(texts, processes=2, progress=True)
    assert results == [G2PResult(text_to_phones(t), None) for t in texts[:100]] + [
        results[100], results[0]]
    assert results[100].error is not None
    assert len(cached_texts(cache_path)) == 101
