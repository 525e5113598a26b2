"""Reading a manifest into columns: the fast way and the exact way agree."""

from __future__ import annotations

import json

import numpy as np

from kidconsole.manifest import Utterance, write_manifest
from kidconsole.subset import table as table_mod
from kidconsole.subset.table import load_table


def utterances(n: int = 300) -> list[Utterance]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        kind = i % 5
        rows.append(Utterance(
            id=f"u{i}", audio=f"a.zip::x/{i}.wav", duration=float(rng.uniform(0.5, 12)), sample_rate=16000,
            speaker=f"화자{i % 17}", split=("train", "validation", "test")[i % 3],
            text='그는 "age": 라고 말했다', phones="k a | N a",
            age=None if kind in (0, 1) else float(rng.integers(3, 12)),
            age_range=[10.0, 19.0] if kind == 0 else None,
            snr=None if kind == 2 else float(rng.normal(20, 8)),
            extra={"speaker": "not this one", "duration": -1} if kind == 3 else {}))
    return rows


def columns(t) -> dict:
    return {k: getattr(t, k) for k in ("offset", "length", "duration", "split", "age", "snr")} | {
        "speaker_names": [t.speakers[i] for i in t.speaker]}


def test_the_canonical_layout_reads_the_fast_way_and_agrees_with_json(tmp_path, monkeypatch):
    rows = utterances()
    path = tmp_path / "m.jsonl"
    write_manifest(path, rows)
    fast_way, took = table_mod._fast, []
    monkeypatch.setattr(table_mod, "_fast", lambda *a: took.append(fast_way(*a)) or took[-1])
    fast = load_table(path)
    assert took and took[0] is not None  # the block was read the fast way
    monkeypatch.setattr(table_mod, "_fast", lambda *a: None)  # force the exact way
    exact = load_table(path)
    a, b = columns(fast), columns(exact)
    for k in ("offset", "length", "duration", "split", "age", "snr"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert a["speaker_names"] == b["speaker_names"] == [r.speaker for r in rows]
    np.testing.assert_allclose(fast.age[0], 14.5)              # the middle of age_range
    assert np.isnan(fast.age[1]) and np.isnan(fast.snr[2])     # unknown stays unknown
    np.testing.assert_allclose(fast.duration, [r.duration for r in rows])


def test_another_writers_layout_gives_the_same_columns(tmp_path):
    rows = utterances(60)
    canonical, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_manifest(canonical, rows)
    # sorted keys, spaces, CRLF and a blank line: the exact way
    other.write_bytes(b"".join(json.dumps(r.__dict__, sort_keys=True).encode() + b"\r\n" for r in rows) + b"\n")
    a, b = load_table(canonical), load_table(other)
    for k in ("duration", "split", "age", "snr"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    assert b.skipped == 0 and len(b) == 60
    assert other.read_bytes()[b.offset[5]:b.offset[5] + b.length[5]].startswith(b'{"age"')


def test_lines_longer_than_a_block_and_a_missing_last_newline(tmp_path, monkeypatch):
    monkeypatch.setattr(table_mod, "BLOCK_BYTES", 100)
    rows = utterances(20)
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(r.to_json() for r in rows), encoding="utf-8")
    t = load_table(path)
    assert len(t) == 20 and t.offset[-1] + t.length[-1] == path.stat().st_size
    assert [t.speakers[i] for i in t.speaker] == [r.speaker for r in rows]
