"""A phase that mixes several train manifests by weight: the config's checks, and a real run that sees both."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest

from kidconsole.config import load_config
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import read_manifest, write_manifest


PSEUDO_SPEAKERS = {"spk0", "spk2", "spk4"}


def _pseudo_manifest(tones, tmp_path):
    """The train rows again as another manifest, pseudo-labelled: new ids; speakers spk0, spk2 and spk4 (who
    are in the test manifest too) kept, the others new."""
    rows = [dataclasses.replace(r, id=f"p-{r.id}", pseudo=True, confidence=0.9,
                                speaker=r.speaker if r.speaker in PSEUDO_SPEAKERS else f"p-{r.speaker}")
            for r in read_manifest(tones["train"])]
    path = tmp_path / "pseudo.jsonl"
    write_manifest(path, rows)
    return path


def test_a_phase_takes_manifest_or_manifests_not_both(make_config, tones, tmp_path):
    both = make_config(phases=[{"manifest": str(tones["train"]), "manifests": [{"path": str(tones["train"])}]}])
    with pytest.raises(KidconsoleError, match=r"phases\.0\.manifests: set manifest or manifests, not both"):
        load_config(both)
    no_path = make_config(phases=[{"manifests": [{"weight": 2.0}]}])
    with pytest.raises(KidconsoleError, match=r"phases\.0\.manifests\.0\.path: required"):
        load_config(no_path)
    cfg = load_config(make_config(data__train_manifest=None, phases=[{"manifests": [{"path": str(tones["train"]),
                                                                                     "weight": 0.5}]}]))
    assert cfg.train_manifests(cfg.phases[0]) == [(str(tones["train"].resolve()), 0.5)]


def test_weighted_keeps_whole_copies_and_a_nested_share(tones):
    from trainers.data import weighted

    rows = list(read_manifest(tones["train"]))[:10]
    assert weighted(rows, 2.0, 0) == rows * 2
    half, more = {r.id for r in weighted(rows, 0.5, 0)}, {r.id for r in weighted(rows, 0.8, 0)}
    assert len(half) == 5 and half < more and len(weighted(rows, 1.5, 0)) == 15


@pytest.mark.slow
def test_a_phase_mixing_two_manifests_trains_on_both_by_weight(make_config, tones, tmp_path, rd):
    pseudo = _pseudo_manifest(tones, tmp_path)
    config = make_config(train__trace_batches=True, train__eval_every=1000, data__train_manifest=None,
                         phases=[{"name": "mixed", "epochs": 1, "lr": 3.0e-3, "warmup": 1,
                                  "manifests": [{"path": str(tones["train"]), "weight": 1.0},
                                                {"path": str(pseudo), "weight": 1.5}]}])
    run = tmp_path / "run"
    assert rd.launch(config, run).wait(timeout=400) == 0, (run / "stdout.log").read_text()[-3000:]
    seen = Counter(i for row in map(json.loads, (run / "trace.rank0.jsonl").read_text().splitlines())
                   for i in row["ids"])
    labelled = {r.id for r in read_manifest(tones["train"])}
    assert {i for i in seen if i in labelled} == labelled and all(seen[i] == 1 for i in labelled)
    pseudo_ids = {r.id for r in read_manifest(pseudo)}
    assert set(seen) - labelled == pseudo_ids
    # weight 1.5: every pseudo row once, and half of their hours (stratified, as a phase fraction) once more
    from trainers.data import load_rows, subset

    pseudo_rows = load_rows(pseudo)
    again = {r.id for r in subset(pseudo_rows, 0.5, 7)}  # make_config's seed
    assert {i for i in pseudo_ids if seen[i] == 2} == again and all(seen[i] in (1, 2) for i in pseudo_ids)
    hours = {r.id: r.duration for r in pseudo_rows}
    assert 0.4 < sum(hours[i] for i in again) / sum(hours.values()) < 0.6
    assert rd.events(run, "phase")[0]["train_utterances"] == 40 + 40 + len(again)

    # the test results split by whether the speaker was pseudo-labelled in training
    from kidconsole.report.summary import report_for

    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert preds and all(p["pseudo_speaker"] == (p["speaker"] in PSEUDO_SPEAKERS) for p in preds)
    split = {b.label: b.n for b in report_for(run).dimensions["pseudo"]}
    n_pseudo = sum(p["speaker"] in PSEUDO_SPEAKERS for p in preds)
    assert split == {"pseudo-labelled speaker": n_pseudo, "labelled or unseen speaker": len(preds) - n_pseudo}


def test_a_report_without_pseudo_labelled_speakers_has_no_such_split(tmp_path):
    from kidconsole.report.summary import report_for

    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps({"id": "a", "ref": "A N", "hyp": "A", "speaker": "s1", "pseudo_speaker": None}) + "\n")
    assert "pseudo" not in report_for(path).dimensions
