"""``trainers.score``: a model's test evaluation as a run directory of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_score_writes_a_finished_run_with_predictions_that_reports_can_compare(tmp_path):
    from trainers.tiny import build_tiny, tone_corpus

    from kidconsole.report.summary import report_for

    model = build_tiny(tmp_path / "model", hidden=32, layers=1)
    corpus = tone_corpus(tmp_path / "tones", n_train=2, n_valid=2, n_test=6)
    run = tmp_path / "score"
    done = subprocess.run([sys.executable, "-m", "trainers.score", "--model", str(model), "--manifest",
                           str(corpus["test"]), "--run-dir", str(run)], cwd=REPO, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["exit_code"] == 0
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    test = [e for e in events if e["kind"] == "test"]
    assert len(test) == 1 and test[0]["n"] == 6 and 0 <= test[0]["per"]
    assert events[-1]["kind"] == "end" and events[-1]["state"] == "finished"
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and {"ref", "hyp", "age", "snr", "speaker"} <= set(preds[0])
    rep = report_for(run, run, n_boot=10)  # a scoring run is a run like any other: reports compare it
    assert rep.n == 6 and abs(rep.overall.rate("per") - test[0]["per"]) < 1e-9
    # the test event's PER by age group is the report's
    by_age = {b.label: b.rate("per") for b in rep.dimensions["age_group"] if b.n}
    assert test[0]["per_age"] == by_age

    # the console's card of a scoring run: its test figures, not a card of dashes
    from kidconsole.runs.reader import RunReader
    from kidconsole.tui.watcher import Watcher
    from kidconsole.tui.widgets.run_card import card_text

    watcher = Watcher([str(tmp_path)], find=lambda roots: [run], make_reader=RunReader, system=False)
    view = next(iter(watcher.poll_once().values()))
    text = card_text(view, 36).plain
    assert view.scoring_only and "scored on 6 utterances" in text and "ETA" not in text


def test_score_without_a_test_manifest_fails_with_the_key(tmp_path):
    import yaml

    from trainers.tiny import build_tiny, tone_corpus

    model = build_tiny(tmp_path / "model", hidden=32, layers=1)
    corpus = tone_corpus(tmp_path / "tones", n_train=2, n_valid=2, n_test=2)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"base": str(model)}, "lora": {"enabled": False},
                                   "data": {"train_manifest": str(corpus["train"]),
                                            "valid_manifest": str(corpus["valid"])},
                                   "phases": [{"epochs": 1}]}))
    run = tmp_path / "score"
    done = subprocess.run([sys.executable, "-m", "trainers.score", "--config", str(cfg), "--run-dir", str(run)],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1
    assert "data.test_manifest" in done.stderr
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
