import csv
import io
import json

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
    assert md.startswith("# Error report: predictions") and "other vs predictions" in md
    assert "## Worst utterances" in md and "REF " in md


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
