import csv
import io
import json

import pytest

from kidconsole.cli import main


def test_report_writes_json_with_buckets_phones_and_worst_utterances(predictions_file, tmp_path):
    out = tmp_path / "r.json"
    assert main(["report", str(predictions_file), "-o", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["utterances"] == 60 and rep["skipped"] == []
    assert set(rep["buckets"]) == {"age", "age_group", "snr", "duration", "gender", "speaker"}
    assert sum(b["utterances"] for b in rep["buckets"]["snr"]) == 60
    assert 0 < rep["overall"]["per"] < 1 and rep["phones"] and rep["confusions"]
    worst = rep["worst"][0]
    assert worst["dimension"] == "all" and worst["utterances"][0]["aligned"]["ref"]


def test_report_compares_two_runs_in_markdown(predictions_file, tmp_path, make_rows, write_jsonl, capsys):
    other = write_jsonl(tmp_path / "other.jsonl", make_rows(60, seed=0, err=0.05, hyp_seed=1))
    assert main(["report", str(predictions_file), "--vs", str(other), "--format", "md", "--bootstrap", "100"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Error report: predictions") and "predictions vs other" in md
    assert "## Worst utterances" in md and "REF " in md


def test_report_run_vs_reference_gives_run_minus_reference(tmp_path, make_rows, write_jsonl):
    run = write_jsonl(tmp_path / "lora.jsonl", make_rows(60, seed=0, err=0.05, hyp_seed=1))
    baseline = write_jsonl(tmp_path / "baseline.jsonl", make_rows(60, seed=0, err=0.4))
    out = tmp_path / "r.json"
    assert main(["report", str(run), "--vs", str(baseline), "-o", str(out), "--bootstrap", "100"]) == 0
    rep = json.loads(out.read_text())
    c = rep["comparison"]
    assert (rep["name"], c["run"], c["reference"]) == ("lora", "lora", "baseline")
    overall = c["deltas"][0]
    assert overall["run"] == rep["overall"]["per"] and overall["delta"] < 0 and overall["significant"]
    assert overall["delta"] == pytest.approx(overall["run"] - overall["reference"], abs=1e-6)


def test_report_marks_low_confidence_buckets_and_gives_one_speaker_no_interval(tmp_path, make_rows, write_jsonl,
                                                                               capsys):
    rows = make_rows(60, err=0.1, hyp_seed=1)
    rows[0]["age"] = 40  # the only adult: a bucket of one speaker
    run = write_jsonl(tmp_path / "lora.jsonl", rows)
    baseline = write_jsonl(tmp_path / "baseline.jsonl", make_rows(60, err=0.4))
    out = tmp_path / "r.json"
    assert main(["report", str(run), "--vs", str(baseline), "-o", str(out), "--bootstrap", "100"]) == 0
    rep = json.loads(out.read_text())
    assert rep["min_speakers"] == 5
    for b in rep["buckets"]["age_group"]:
        assert b["low_confidence"] == (0 < b["speakers"] < 5)
    adults = next(d for d in rep["comparison"]["deltas"] if d["dimension"] == "age_group" and d["bucket"] == "18+")
    assert adults["speakers"] == 1 and adults["low_confidence"] and adults["ci_lo"] is None and adults["ci_hi"] is None
    assert main(["report", str(run), "--vs", str(baseline), "--format", "md", "--bootstrap", "100"]) == 0
    md = capsys.readouterr().out
    assert "n/a (1 speaker)" in md and "-46.94..-46.94" not in md and "low" in md


def test_report_comparison_shows_both_sides_of_weakest_phones_and_positions(tmp_path, make_rows, write_jsonl,
                                                                            capsys):
    run = write_jsonl(tmp_path / "lora.jsonl", make_rows(60, err=0.05, hyp_seed=1))
    baseline = write_jsonl(tmp_path / "baseline.jsonl", make_rows(60, err=0.4))
    assert main(["report", str(run), "--vs", str(baseline), "--format", "md", "--bootstrap", "50"]) == 0
    md = capsys.readouterr().out
    weakest = md[md.index("## Weakest phones"):].split("\n\n")[1].splitlines()
    position = md[md.index("## Errors by position"):].split("\n\n")[1].splitlines()
    for table in (weakest, position):
        assert "lora" in table[0] and "baseline" in table[0]


def test_report_csv_has_one_row_per_bucket(predictions_file, capsys):
    assert main(["report", str(predictions_file), "--format", "csv", "--snr-edges", "20"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["dimension"] == "all" and rows[0]["utterances"] == "60"
    assert [r["bucket"] for r in rows if r["dimension"] == "snr"] == ["<20 dB", ">=20 dB"]


def test_report_prints_tables_and_counts_skipped_lines(tmp_path, make_rows, write_jsonl, capsys):
    path = write_jsonl(tmp_path / "p.jsonl", make_rows(5) + ["garbage"])
    assert main(["report", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "Weakest phones" in out and "Age group" in out
    assert f"1 malformed prediction lines skipped; first: {path}:6" in err
    assert main(["report", str(path), "--strict"]) == 2
    assert f"{path}:6: not JSON" in capsys.readouterr().err


def test_report_of_a_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory or predictions file" in capsys.readouterr().err


def test_the_docs_compare_a_run_with_its_reference_in_one_order():
    import re
    from pathlib import Path

    root = Path(__file__).parents[2]
    examples = []
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        examples += re.findall(r"kidconsole report (\S+) --vs (\S+?)[`\s]", doc.read_text(encoding="utf-8"))
    assert examples and any("baseline" in ref for _, ref in examples)
    assert not [run for run, _ in examples if "base" in run], "the reference goes after --vs (delta = run - it)"
