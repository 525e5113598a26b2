"""Run configs as files: the shipped ones are package data, `config new` copies one with its required edits
marked, `config check` names key and line, `config diff` compares with defaults filled in."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kidconsole.cli import main
from kidconsole.config import resolve_config
from kidconsole.config_files import check, config_diff, find, new_config, own, packaged, resolved, write_new
from kidconsole.errors import KidconsoleError

REPO = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, model: bool = True, manifests: bool = True) -> Path:
    """A project folder with a saved-model folder and the tiny config's manifests where its comments say."""
    if model:
        (tmp_path / "build" / "tiny-model").mkdir(parents=True)
        (tmp_path / "build" / "tiny-model" / "config.json").write_text("{}")  # what the launcher's check reads
    if manifests:
        (tmp_path / "build" / "tones").mkdir(parents=True, exist_ok=True)
        for split in ("train", "valid", "test"):
            (tmp_path / "build" / "tones" / f"{split}.jsonl").write_text("")
    return tmp_path


def test_every_config_of_the_repository_ships_as_package_data_and_validates():
    shipped = packaged()
    assert sorted(shipped) == sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
    for name, path in shipped.items():
        assert path.read_bytes() == (REPO / "configs" / path.name).read_bytes()
        resolve_config(yaml.safe_load(path.read_text()), name, path.parent, check_paths=False)


def test_find_takes_a_shipped_name_a_file_or_a_run_directory(tmp_path):
    assert find("tiny_cpu") == packaged()["tiny_cpu"] == find("tiny_cpu.yaml")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("name: x\n")
    assert find(tmp_path / "run") == tmp_path / "run" / "config.yaml"
    with pytest.raises(KidconsoleError, match="shipped: .*tiny_cpu"):
        find("tiny-cpu-typo")


def test_config_new_in_an_empty_folder_marks_exactly_the_paths_that_are_not_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = new_config("tiny_cpu", "my.yaml")
    assert {e.key for e in made.edits} == {"model.base", "data.train_manifest", "data.valid_manifest",
                                           "data.test_manifest"}
    lines = made.text.splitlines()
    for e in made.edits:
        assert "# EDIT: " in lines[e.line - 1] and e.key.split(".")[-1] + ":" in lines[e.line - 1]
    assert sum("# EDIT: " in ln for ln in lines) == 4
    assert lines[0].startswith("# EDIT before launching: 4 key(s)")
    # the shipped file's comments survive, its relative paths now mean the same places from the copy's folder
    assert "# a from-scratch tiny model must learn its features" in made.text
    assert "base: build/tiny-model" in made.text and "train_manifest: build/tones/train.jsonl" in made.text


def test_config_new_with_the_paths_there_writes_a_file_check_accepts_with_no_marks(tmp_path, monkeypatch):
    monkeypatch.chdir(project(tmp_path))
    made = write_new("tiny_cpu", "configs/mine.yaml", ["lora.r=4", "phases.0.lr=5e-4"])
    assert made.edits == [] and "EDIT" not in made.text
    text = Path("configs/mine.yaml").read_text()
    assert "base: ../build/tiny-model" in text  # from configs/, as the shipped file is written
    assert check("configs/mine.yaml") == []
    cfg = resolve_config(yaml.safe_load(text), "mine", tmp_path / "configs")
    assert cfg.lora.r == 4 and cfg.phases[0].lr == 5e-4 and cfg.model.base == str(tmp_path / "build" / "tiny-model")
    assert own() == [Path("configs/mine.yaml")]


def test_config_new_set_writes_relative_paths_as_typed_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(project(tmp_path))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "v.jsonl").write_text("")
    made = new_config("tiny_cpu", tmp_path / "configs" / "x.yaml", ["data.valid_manifest=data/v.jsonl"])
    assert made.edits == [] and "valid_manifest: ../data/v.jsonl" in made.text


def test_config_new_refuses_an_unknown_key_with_the_nearest_and_an_existing_file(tmp_path):
    with pytest.raises(KidconsoleError, match="lora.rr: unknown key; nearest: lora.r"):
        new_config("tiny_cpu", tmp_path / "x.yaml", ["lora.rr=4"])
    (tmp_path / "x.yaml").write_text("mine")
    with pytest.raises(KidconsoleError, match="already exists"):
        write_new("tiny_cpu", tmp_path / "x.yaml")
    assert (tmp_path / "x.yaml").read_text() == "mine"


def test_config_check_names_the_key_and_its_line(tmp_path):
    project(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  base: build/tiny-model\n"
                    "data:\n  train_manifest: build/tones/train.jsonl\n  valid_manifest: nowhere.jsonl\n"
                    "lora:\n  r: sixteen\n  dropuot: 0.1\n"
                    "phases:\n  - {name: a, lr: 1e-4}\n")
    found = {p.key: p for p in check(path)}
    assert found["data.valid_manifest"].line == 5 and "does not exist" in found["data.valid_manifest"].reason
    assert found["lora.r"].line == 7 and "expected a positive integer, got 'sixteen'" in found["lora.r"].reason
    assert found["lora.dropuot"].line == 8 and "nearest: lora.dropout" in found["lora.dropuot"].reason
    assert found["lora.r"].shown("bad.yaml") == "bad.yaml:7: lora.r: expected a positive integer, got 'sixteen'"


def test_config_check_reports_a_key_written_twice_and_a_model_folder_that_cannot_load(tmp_path):
    project(tmp_path, model=False)
    (tmp_path / "model").mkdir()  # a folder with no saved model in it
    path = tmp_path / "twice.yaml"
    path.write_text("model:\n  base: model\ndata:\n  valid_manifest: build/tones/valid.jsonl\n"
                    "  train_manifest: build/tones/train.jsonl\nlora:\n  r: 4\n  r: 8\nphases: [{name: a}]\n")
    found = check(path)
    assert (found[0].key, found[0].line) == ("r", 8) and "the last one wins" in found[0].reason
    assert [(p.key, p.line) for p in found[1:]] == [("model.base", 2)]


def test_config_diff_fills_in_defaults_and_names_what_differs():
    diff = {k: (a, b) for k, a, b in config_diff(resolved(find("full_3500h_r16")),
                                                 resolved(find("full_3500h_r32")))}
    assert diff["lora.r"] == (16, 32) and diff["train.eval_every"] == (500, 2000)
    assert diff["phases.0.patience"] == (None, 15)  # unset in one: the default fills it
    assert "name" not in diff and "lora.dropout" not in diff


def test_the_config_command_lists_shows_writes_checks_and_diffs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(project(tmp_path))
    assert main(["config", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny_cpu" in out and "pilot_148h" in out and "yours: none" in out
    assert main(["config", "show", "tiny_cpu"]) == 0
    assert capsys.readouterr().out == packaged()["tiny_cpu"].read_text()
    assert main(["config", "new", "pilot_148h", "-o", "configs/pilot.yaml", "--set", "lora.r=8"]) == 0
    out = capsys.readouterr().out
    marked = [ln.strip().split(": ")[0] for ln in out.splitlines()[1:]]
    assert out.startswith("wrote configs/pilot.yaml: change the 7 key(s) marked EDIT")
    assert main(["config", "check", "configs/pilot.yaml"]) == 1
    checked = [ln.split(": ")[0] for ln in capsys.readouterr().out.splitlines()]
    assert checked == marked and "configs/pilot.yaml:22" in checked  # model.base, below the 9-line header
    assert main(["config", "new", "tiny_cpu", "-o", "configs/tiny.yaml"]) == 0
    assert "ready to launch" in capsys.readouterr().out
    assert main(["config", "check", "configs/tiny.yaml"]) == 0
    assert capsys.readouterr().out == "configs/tiny.yaml: ok\n"
    assert main(["config", "diff", "configs/pilot.yaml", "pilot_148h"]) == 0
    out = capsys.readouterr().out
    assert "lora.r" in out and "8" in out and "16" in out
    assert main(["config", "list"]) == 0
    assert "configs/pilot.yaml" in capsys.readouterr().out


def test_config_show_writes_a_files_control_characters_out_and_check_refuses_them(tmp_path, capsys):
    path = tmp_path / "esc.yaml"
    path.write_text("name: x\x1b]0;title\x07\nphases: [{name: a}]\n")
    assert main(["config", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;title\\x07" in out
    assert main(["config", "check", str(path)]) == 2  # YAML itself refuses them
    err = capsys.readouterr().err
    assert "\x1b" not in err and "unacceptable character #x001b" in err
