"""``kidconsole subset build`` / ``show``: options as typed, exit codes, messages."""

from __future__ import annotations

import yaml

from kidconsole.cli import main


def test_build_then_show(corpus, tmp_path, capsys):
    out = tmp_path / "s"
    rc = main(["subset", "build", str(corpus), "--hours", "8", "--split", "0.9/0.05/0.05", "--fractions", "0.5,1",
               "--max-val-samples", "100", "--seed", "5", "--age-edges", "6,9", "--no-progress", "-o", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "train_phase2" in printed and "validation_sample" in printed
    options = yaml.safe_load((out / "subset.yaml").read_text())
    assert options["split_shares"] == [0.9, 0.05, 0.05] and options["fractions"] == [0.5, 1.0]
    assert options["age_edges"] == [6.0, 9.0] and options["seed"] == 5 and options["max_val_samples"] == 100
    assert len((out / "validation_sample.jsonl").read_text().splitlines()) == 100
    assert not (out / "train_phase3.jsonl").exists()
    assert main(["subset", "show", str(out)]) == 0
    assert "validation_sample" in capsys.readouterr().out


def test_per_split_hours_and_pooled_speakers(corpus, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["subset", "build", str(corpus), "--split-hours", "6/1/1", "--pool-splits",
                 "--max-val-samples", "none", "--no-progress", "-o", str(out)]) == 0
    options = yaml.safe_load((out / "subset.yaml").read_text())
    assert options["split_hours"] == [6.0, 1.0, 1.0] and options["use_source_splits"] is False
    assert options["max_val_samples"] is None


def test_impossible_request_exits_2_with_the_reason(corpus, tmp_path, capsys):
    rc = main(["subset", "build", str(corpus), "--hours", "9999", "--no-progress", "-o", str(tmp_path / "s")])
    assert rc == 2
    assert "asked for 9999.00 h" in capsys.readouterr().err


def test_unparsable_numbers_name_the_option(corpus, tmp_path, capsys):
    rc = main(["subset", "build", str(corpus), "--split", "0.9/x/0.1", "-o", str(tmp_path / "s")])
    assert rc == 2
    assert "--split: expected numbers" in capsys.readouterr().err


def test_show_on_a_folder_without_a_report(tmp_path, capsys):
    assert main(["subset", "show", str(tmp_path)]) == 2
    assert "report.json" in capsys.readouterr().err


def test_errors_name_the_flags_that_fix_them(corpus, tmp_path, capsys):
    messages = []

    def error(*flags):
        assert main(["subset", "build", str(corpus), *flags, "--no-progress", "-o", str(tmp_path / "s")]) == 2
        messages.append(capsys.readouterr().err)
        return messages[-1]

    too_small = error("--hours", "60", "--split", "0.5/0.2/0.3")
    assert "--pool-splits" in too_small and "--hours" in too_small and "use_source_splits" not in too_small
    assert "--split:" in error("--hours", "10", "--split", "0.5/0.6/0.1")
    assert "--fractions:" in error("--hours", "10", "--fractions", "0.6/0.2/1")
    assert "--age-edges:" in error("--hours", "10", "--age-edges", "9,5")
    assert "--max-val-samples: expected" in error("--max-val-samples", "-3")
    for message in messages:
        assert not any(name in message for name in ("split_shares", "age_edges", "max_val_samples", "=False"))
