"""A heavy command run without its extra says which extra to install, in one line, before doing anything."""

from __future__ import annotations

import pytest

from kidconsole import extras
from kidconsole.cli import main

HEAVY = {
    "train": [["run", "launch", "c.yaml"], ["run", "resume", "r"], ["run", "sweep", "c.yaml", "--grid", "lora.r=4,8"],
              ["run", "average", "r", "--best", "2"], ["run", "ensemble", "a", "b"], ["export", "r", "--onnx"],
              ["transcribe", "m", "a.wav"], ["select", "m", "--manifest", "pool.jsonl", "--hours", "1"],
              ["pseudo", "m", "audio", "-o", "p.jsonl", "--min-confidence", "0.9"], ["demo"]],
    "serve": [["serve", "m"]],
}


@pytest.mark.parametrize("extra, argv", [(e, a) for e, cmds in HEAVY.items() for a in cmds],
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_heavy_command_without_its_extra_names_the_extra_to_install(extra, argv, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(extras.EXTRAS, extra, ("kidconsole_no_such_module",))  # as on a light install
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kidconsole: error: kidconsole {argv[0]}") and err.count("\n") == 1
    assert f"needs the {extra} extra (kidconsole_no_such_module is not installed): pip install 'kidconsole[{extra}]'" \
        in err
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_the_light_commands_need_no_extra():
    assert all(extras.missing(e) is None for e in extras.EXTRAS)  # the development venv holds every extra
