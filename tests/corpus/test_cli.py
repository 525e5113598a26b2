import json

from kidconsole.cli import main
from kidconsole.manifest import read_manifest


def test_synth_then_index_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["corpus", "synth", str(out), "--adults", "2", "--children-per-age", "1",
                 "--utterances", "2", "--bad-files", "--zip", "--seed", "5"]) == 0
    assert "20 utterances" in capsys.readouterr().out
    manifest = tmp_path / "m.jsonl"
    assert main(["corpus", "index", str(out), "-o", str(manifest), "-j", "2", "--quiet",
                 "--estimate-snr"]) == 0
    shown = capsys.readouterr().out
    assert "missing_audio" in shown and "bad_json" in shown
    rows = list(read_manifest(manifest))
    assert len(rows) == 20
    summary = json.loads((tmp_path / "m.summary.json").read_text())
    assert summary["kept"] == 20 and sum(summary["rejected"].values()) == 7


def test_index_of_a_missing_root_is_a_user_error(tmp_path, capsys):
    assert main(["corpus", "index", str(tmp_path / "nope"), "-o", str(tmp_path / "m.jsonl"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_light_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, kidconsole.cli.corpus, kidconsole.corpus.index, kidconsole.corpus.synth;"
            "print(any(m in sys.modules for m in ('torch', 'transformers', 'peft', 'accelerate')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_index_draws_its_progress_bar_on_a_terminal_unless_told_no_progress(tmp_path, capsys, monkeypatch):
    import sys

    out = tmp_path / "corpus"
    assert main(["corpus", "synth", str(out), "--adults", "1", "--children-per-age", "1", "--utterances", "1"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["corpus", "index", str(out), "-o", str(tmp_path / "a.jsonl"), "-j", "1"]) == 0
    assert "labels" in capsys.readouterr().err  # the bar, on stderr
    assert main(["corpus", "index", str(out), "-o", str(tmp_path / "b.jsonl"), "-j", "1", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
