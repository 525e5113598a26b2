"""``kidconsole select`` end to end with the tiny model: the manifest, scores and report; bad audio
skipped and counted; a killed scoring resumes from its scores file."""

from __future__ import annotations

import json
from pathlib import Path

from kidconsole.manifest import read_manifest, write_manifest


def _pool_with_bad_audio(tones, tmp_path: Path) -> Path:
    rows = list(read_manifest(tones["train"]))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")
    bad = [rows[0].__class__(**{**rows[0].__dict__, "id": "missing", "audio": str(tmp_path / "gone.wav")}),
           rows[0].__class__(**{**rows[0].__dict__, "id": "broken", "audio": str(broken)})]
    pool = tmp_path / "pool.jsonl"
    write_manifest(pool, rows + bad)
    return pool


def test_select_writes_the_picks_scores_and_report(kidconsole, tiny_model, tones, tmp_path):
    pool = _pool_with_bad_audio(tones, tmp_path)
    hours = sum(r.duration for r in read_manifest(tones["train"])) / 3600 / 4
    out = tmp_path / "picked.jsonl"
    r = kidconsole("select", tiny_model, "--manifest", pool, "--hours", hours, "-o", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    picked = list(read_manifest(out))
    assert 0.7 * hours * 3600 <= sum(p.duration for p in picked) <= 1.3 * hours * 3600
    originals = {line for line in pool.read_text().splitlines()}
    assert all(line in originals for line in out.read_text().splitlines())  # rows copied as written
    scores = [json.loads(x) for x in (tmp_path / "picked.scores.jsonl").read_text().splitlines()[1:]]
    assert len(scores) == 32
    errors = {s["id"] for s in scores if "error" in s}
    assert errors == {"missing", "broken"}
    good = [s for s in scores if "error" not in s]
    assert all(0 < s["confidence"] <= 1 and s["loss"] is not None and s["per"] is not None for s in good)
    assert all(0 <= s["phone_confidence"] <= 1 for s in good)
    report = json.loads((tmp_path / "picked.report.json").read_text())
    assert report["skipped"] == 2 and report["pool"]["utterances"] == 30
    assert report["picked"]["utterances"] == len(picked)
    assert report["correlation"]["labelled_utterances"] == 30
    assert {row["stratum"] for row in report["strata"]} and all(row["picked_utterances"] > 0
                                                               for row in report["strata"])
    assert "2 skipped" in r.stderr


def test_select_resumes_from_a_torn_scores_file(tiny_model, tones, tmp_path):
    from trainers.select import main

    out = tmp_path / "picked.jsonl"
    argv = [str(tiny_model), "--manifest", str(tones["train"]), "--hours", "0.002", "-o", str(out), "--no-progress"]
    assert main(argv) == 0
    scores = tmp_path / "picked.scores.jsonl"
    lines = scores.read_text().splitlines(keepends=True)
    first = out.read_text()
    kept = lines[:11]
    scores.write_text("".join(kept) + lines[11][:15])  # killed in the middle of writing line 12
    assert main(argv) == 0
    again = scores.read_text().splitlines()
    assert again[:11] == [x.rstrip("\n") for x in kept]  # what was scored is not scored again
    assert len(again) == len(lines) and len({json.loads(x).get("id") for x in again[1:]}) == len(lines) - 1
    assert out.read_text() == first


def test_select_refuses_scores_of_another_manifest(tiny_model, tones, tmp_path):
    from kidconsole.errors import KidconsoleError
    from trainers.select import main

    out = tmp_path / "picked.jsonl"
    assert main([str(tiny_model), "--manifest", str(tones["test"]), "--hours", "0.001", "-o", str(out),
                 "--no-progress"]) == 0
    try:
        main([str(tiny_model), "--manifest", str(tones["train"]), "--hours", "0.001", "-o", str(out),
              "--no-progress"])
    except KidconsoleError as e:
        assert "picked.scores.jsonl" in str(e) and "another -o" in str(e)
    else:
        raise AssertionError("scores of another manifest were reused")


def test_select_by_phone_confidence_refuses_scores_written_without_it(tiny_model, tones, tmp_path):
    import pytest

    from kidconsole.errors import KidconsoleError
    from trainers.select import main

    out = tmp_path / "picked.jsonl"
    argv = [str(tiny_model), "--manifest", str(tones["train"]), "--hours", "0.002", "-o", str(out), "--no-progress"]
    assert main(argv) == 0
    scores = tmp_path / "picked.scores.jsonl"
    lines = scores.read_text().splitlines()
    old = [lines[0]] + [json.dumps({k: v for k, v in json.loads(x).items() if k != "phone_confidence"})
                        for x in lines[1:]]
    scores.write_text("\n".join(old) + "\n")  # as a scoring before phone confidence wrote it
    assert main(argv) == 0  # --by confidence does not need it
    with pytest.raises(KidconsoleError, match="picked.scores.jsonl.*delete it"):
        main([*argv, "--by", "phone-confidence"])
