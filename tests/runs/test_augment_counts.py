"""A run's augmentation as `run ls` and the console's run detail show it: settings from its config, counts
from its newest train event."""

import json

from kidconsole import rundir
from kidconsole.cli import main
from kidconsole.config import dump_config, resolve_config
from kidconsole.runs.augment_counts import applied_counts, counts_line, settings_lines


def _config():
    return resolve_config({
        "model": {"base": "m"}, "data": {"valid_manifest": "v.jsonl", "train_manifest": "t.jsonl"},
        "phases": [{"name": "kids", "augment": "strong"},
                   {"name": "mixed", "augment": {"apply_prob": 0.5, "speed_prob": 0.0,
                                                 "waveform": {"pitch": {"prob": 0.3}, "babble": {"prob": 0.2}}},
                    "manifests": [{"path": "kids.jsonl"}, {"path": "adults.jsonl", "augment": "child_like"}]}]},
        "run.yaml", check_paths=False)


TRAIN = {"t": 2.0, "kind": "train", "step": 40, "phase": 2, "masked_utterances": 310, "speed_perturbed": 55,
         "augmented": {"pitch": 120, "vtlp": 80, "babble": 33}}


def test_counts_come_from_the_newest_train_event_each_augmentation_by_name():
    counts = applied_counts(TRAIN)
    assert counts == {"SpecAugment": 310, "speed": 55, "pitch": 120, "vtlp": 80, "babble": 33}
    assert counts_line(counts) == "SpecAugment 310 · speed 55 · pitch 120 · vtlp 80 · babble 33"
    assert applied_counts({"kind": "train", "augmented": {"pitch": "x"}}) == {} and counts_line({}) == "-"


def test_settings_list_each_phases_chain_and_a_manifests_own():
    lines = settings_lines(_config().model_dump())
    assert lines[:2] == ["phase 1 kids (preset strong):", "  SpecAugment 100% of utterances, speed 50%"]
    assert "  pitch 30%: semitones -3..3" in lines and "  babble 20%: speakers 3..7, snr_db 13..20" in lines
    i = lines.index(next(line for line in lines if "adults.jsonl" in line))
    assert lines[i + 1:i + 4] == ["    speed 0%", "    pitch 100%: median_hz 220..320", "    vtlp 100%: warp 1.1..1.3"]


def test_run_ls_shows_what_was_applied(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    run = tmp_path / "runs" / "kids"
    rundir.update_status(run, name="kids", state=rundir.FINISHED, step=40, total_steps=40)
    (run / rundir.CONFIG).write_text(dump_config(_config()))
    (run / rundir.EVENTS).write_text(json.dumps(TRAIN) + "\n")
    assert main(["run", "ls", "--wide", "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "augmented" in out and "pitch 120" in out and "SpecAugment" in out
    assert main(["run", "ls", "--json", "--runs", str(tmp_path / "runs")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["augmented"]["babble"] == 33
