"""The demo's light steps: corpus reuse, manifests and subset, figures and the pass/fail rule."""

from __future__ import annotations

import json

from kidconsole.demo import Figures, Paths, TARGET_RATIO, corpus_stamp, ensure_corpus, prepare_manifests
from kidconsole.manifest import read_manifest


def test_corpus_is_reused_when_its_stamp_matches_and_rebuilt_when_the_setting_changes(tmp_path, small_scale,
                                                                                    quiet_console):
    from dataclasses import replace

    paths = Paths(tmp_path)
    stamp = ensure_corpus(paths, small_scale, 0, quiet_console)
    marker = paths.corpus / "marker"
    marker.write_text("x")
    assert ensure_corpus(paths, small_scale, 0, quiet_console) == stamp
    assert marker.exists()  # reused, not regenerated

    bigger = replace(small_scale, utterances=4)
    new = ensure_corpus(paths, bigger, 0, quiet_console)
    assert new != stamp and not marker.exists()
    assert json.loads((paths.corpus / "demo-stamp.json").read_text()) == corpus_stamp(bigger, 0)


def test_manifests_split_adults_by_source_split_and_children_into_a_speaker_disjoint_subset(
        tmp_path, small_scale, quiet_console):
    paths = Paths(tmp_path)
    ensure_corpus(paths, small_scale, 0, quiet_console)
    m = prepare_manifests(paths, 0, quiet_console)

    for split in ("train", "validation", "test"):
        rows = list(read_manifest(m[f"adult_{split}"]))
        assert rows and all(r.age >= 18 and r.split == split for r in rows)
    speakers = {}
    for split in ("train", "validation", "test"):
        rows = list(read_manifest(m[split]))
        assert rows and all(r.age < 18 for r in rows)
        speakers[split] = {r.speaker for r in rows}
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["validation"] & speakers["test"]
    phase1 = {r.id for r in read_manifest(m["train_phase1"])}
    phase2 = {r.id for r in read_manifest(m["train_phase2"])}
    assert phase1 < phase2 == {r.id for r in read_manifest(m["train"])}


def test_a_run_that_does_not_beat_the_base_model_fails_the_demo():
    fig = Figures(adult_per=0.3, child_per=0.6, runs={"a": 0.3, "b": 0.61})
    assert not fig.beaten and not fig.target_met
    fig = Figures(adult_per=0.3, child_per=0.6, runs={"a": 0.3, "b": None})
    assert not fig.beaten  # a run without a test score never counts as a win


def test_the_target_needs_every_run_at_most_three_quarters_of_the_base_per():
    fig = Figures(adult_per=0.3, child_per=0.6, runs={"a": 0.3, "b": 0.6 * TARGET_RATIO})
    assert fig.beaten and fig.target_met
    assert fig.ratio("a") == 0.5
    fig = Figures(adult_per=0.3, child_per=0.6, runs={"a": 0.3, "b": 0.5})
    assert fig.beaten and not fig.target_met
    assert Figures(adult_per=0.3, child_per=0.6, runs={"a": 0.0, "b": 0.1}).target_met  # a perfect run counts
