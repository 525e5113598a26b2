import json

import pytest

from kidconsole.errors import KidconsoleError
from kidconsole.report.predictions import read_predictions

GOOD = {"id": "u1", "speaker": "s1", "age": 7, "snr": "25", "duration": 2.5, "ref": "A G", "hyp": "A"}


def test_malformed_lines_are_skipped_with_file_and_line(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "p.jsonl", [
        GOOD,
        "{not json",
        {**GOOD, "id": "u3", "ref": None},
        "",
        {**GOOD, "id": "u5", "snr": "loud"},
        [1, 2],
        {**GOOD},  # duplicate id
        {**GOOD, "id": "u8", "snr": "N/A", "age": None},
    ])
    ps = read_predictions(path)
    assert [r.id for r in ps.rows] == ["u1", "u8"]
    assert ps.rows[0].snr == 25.0 and ps.rows[1].snr is None
    assert [s.split(": ", 1)[0] for s in ps.skipped] == [f"{path}:{n}" for n in (2, 3, 5, 6, 7)]
    assert "not JSON" in ps.skipped[0] and "lacks ref" in ps.skipped[1] and "snr" in ps.skipped[2]
    assert "duplicate id 'u1'" in ps.skipped[4]


def test_a_line_that_is_not_utf8_is_skipped_and_named(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n{\"id\": \"u2\xff\"}\n" + json.dumps({**GOOD, "id": "u3"}).encode())
    ps = read_predictions(path)
    assert [r.id for r in ps.rows] == ["u1", "u3"]
    assert ps.skipped == [f"{path}:2: not UTF-8 (byte 0xff at column 11)"]


def test_strict_reading_stops_at_the_first_malformed_line(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "p.jsonl", [GOOD, {**GOOD, "id": "u2", "age": [3]}])
    with pytest.raises(KidconsoleError, match=rf"{path}:2: age must be a number"):
        read_predictions(path, strict=True)


def test_a_run_directory_gives_its_predictions_and_its_name(tmp_path, write_jsonl):
    run = tmp_path / "run-7"
    run.mkdir()
    with pytest.raises(KidconsoleError, match="no predictions.jsonl"):
        read_predictions(run)
    write_jsonl(run / "predictions.jsonl", [GOOD])
    assert read_predictions(run).name == "run-7"
    (run / "status.json").write_text(json.dumps({"name": "lora-r8", "state": "finished"}))
    assert read_predictions(run).name == "lora-r8"
    with pytest.raises(KidconsoleError, match="no such run directory"):
        read_predictions(tmp_path / "missing")
