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
