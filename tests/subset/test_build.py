"""The subset build end to end on a synthetic corpus: disjoint, nested, deterministic, on target, in shape."""

from __future__ import annotations

import json

from pathlib import Path

import pytest
import yaml

from kidconsole.errors import KidconsoleError
from kidconsole.subset.build import build_subset

SPLITS = ("train", "validation", "test")


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ids(path: Path) -> set[str]:
    return {r["id"] for r in read_rows(path)}


def speakers(path: Path) -> set[str]:
    return {r["speaker"] for r in read_rows(path)}


def hours(path: Path) -> float:
    return sum(r["duration"] for r in read_rows(path)) / 3600


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("subset")
    result = build_subset(corpus, out, hours=20, max_val_samples=300, seed=3, progress=False)
    return result, out


@pytest.fixture(scope="module")
def pooled(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pooled")
    result = build_subset(corpus, out, hours=30, split_shares=(0.8, 0.1, 0.1), seed=3, use_source_splits=False,
                          progress=False)
    return result, out


def test_writes_the_documented_layout(built):
    result, out = built
    names = {p.name for p in out.iterdir()}
    assert names == {"train.jsonl", "validation.jsonl", "test.jsonl", "validation_sample.jsonl",
                     "train_phase1.jsonl", "train_phase2.jsonl", "train_phase3.jsonl",
                     "report.md", "report.json", "subset.yaml"}
    assert set(result.files) == {p[:-len(".jsonl")] for p in names if p.endswith(".jsonl")}


@pytest.mark.parametrize("fixture", ["built", "pooled"])
def test_no_speaker_crosses_train_validation_test(fixture, request):
    _, out = request.getfixturevalue(fixture)
    spk = {s: speakers(out / f"{s}.jsonl") for s in SPLITS}
    assert all(spk.values())
    assert not spk["train"] & spk["validation"]
    assert not spk["train"] & spk["test"]
    assert not spk["validation"] & spk["test"]


def test_source_split_pools_keep_each_speaker_in_its_own_source_split(built):
    _, out = built
    for s in SPLITS:
        assert {r["split"] for r in read_rows(out / f"{s}.jsonl")} == {s}


@pytest.mark.parametrize("fixture", ["built", "pooled"])
def test_each_split_within_two_percent_of_its_target_hours(fixture, request):
    result, out = request.getfixturevalue(fixture)
    shares = result.options["split_shares"]
    total = result.options["hours"]
    for s, share in zip(SPLITS, shares):
        assert hours(out / f"{s}.jsonl") == pytest.approx(total * share, rel=0.02)
        assert result.outputs[s].hours == pytest.approx(hours(out / f"{s}.jsonl"))


def test_per_split_hours_are_honoured(corpus, tmp_path):
    result = build_subset(corpus, tmp_path, split_hours=(12, 2, 1.5), max_val_samples=None, progress=False)
    for s, want in zip(SPLITS, (12, 2, 1.5)):
        assert hours(tmp_path / f"{s}.jsonl") == pytest.approx(want, rel=0.02)
        assert result.outputs[s].target_hours == want


def test_train_keeps_the_corpus_shares_of_every_stratum(built, pooled):
    for result, _ in (built, pooled):
        for dim, dev in result.outputs["train"].deviation_pp.items():
            assert dev < 1.5, (dim, dev)


def test_small_splits_stay_close_to_the_corpus_shares(pooled):
    result, _ = pooled
    for s in ("validation", "test"):
        assert result.outputs[s].max_deviation_pp < 1.5, result.outputs[s].deviation_pp


def test_curriculum_phases_are_nested_and_the_last_is_train(built):
    result, out = built
    p1, p2, p3 = (ids(out / f"train_phase{i}.jsonl") for i in (1, 2, 3))
    assert p1 < p2 < p3
    assert p3 == ids(out / "train.jsonl")
    train_h = result.outputs["train"].hours
    assert result.outputs["train_phase1"].hours == pytest.approx(0.2 * train_h, rel=0.03)
    assert result.outputs["train_phase2"].hours == pytest.approx(0.6 * train_h, rel=0.03)
    assert result.outputs["train_phase1"].max_deviation_pp < 1.5


def test_validation_sample_is_a_stratified_subset_of_validation(built):
    result, out = built
    sample, validation = ids(out / "validation_sample.jsonl"), ids(out / "validation.jsonl")
    assert len(sample) == 300 and sample < validation
    assert result.outputs["validation_sample"].deviation_pp["duration"] < 5


def test_validation_sample_equals_validation_when_the_cap_is_larger(corpus, tmp_path):
    build_subset(corpus, tmp_path, hours=10, max_val_samples=10**6, progress=False)
    assert (tmp_path / "validation_sample.jsonl").read_bytes() == (tmp_path / "validation.jsonl").read_bytes()


def test_output_lines_are_the_manifest_lines_verbatim(corpus, built):
    _, out = built
    source = set(corpus.read_bytes().splitlines(keepends=True))
    lines = (out / "train_phase1.jsonl").read_bytes().splitlines(keepends=True)
    assert lines and all(line in source for line in lines)


def test_same_seed_same_files_other_seed_other_speakers(corpus, built, tmp_path):
    _, out = built
    build_subset(corpus, tmp_path / "again", hours=20, max_val_samples=300, seed=3, progress=False)
    for name in ("train", "validation", "test", "validation_sample", "train_phase1"):
        assert (tmp_path / "again" / f"{name}.jsonl").read_bytes() == (out / f"{name}.jsonl").read_bytes()
    build_subset(corpus, tmp_path / "other", hours=20, max_val_samples=300, seed=4, progress=False)
    assert speakers(tmp_path / "other" / "test.jsonl") != speakers(out / "test.jsonl")


def test_report_and_options_are_written(built):
    result, out = built
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["train"]["speakers"] == result.outputs["train"].speakers
    assert set(report["outputs"]["test"]["shares"]) == {"age", "snr", "duration"}
    assert abs(sum(report["corpus"]["shares"]["age"].values()) - 1) < 1e-9
    options = yaml.safe_load((out / "subset.yaml").read_text())
    assert options["seed"] == 3 and options["hours"] == 20 and options["fractions"] == [0.2, 0.6, 1.0]
    md = (out / "report.md").read_text()
    assert "| train |" in md and "Shares by age" in md


def test_no_hours_takes_as_much_as_the_source_pools_give(corpus, tmp_path):
    result = build_subset(corpus, tmp_path, max_val_samples=None, progress=False)
    # the limiting pool is used (nearly) whole, and the others at the requested shares
    pools = {s: sum(r["duration"] for r in read_rows(corpus) if r["split"] == s) / 3600 for s in SPLITS}
    used = [result.outputs[s].hours / pools[s] for s in SPLITS]
    assert max(used) > 0.97
    total = sum(result.outputs[s].hours for s in SPLITS)
    for s, share in zip(SPLITS, result.options["split_shares"]):
        assert result.outputs[s].hours / total == pytest.approx(share, abs=0.01)


def test_more_hours_than_the_corpus_holds_is_refused(corpus, tmp_path):
    with pytest.raises(KidconsoleError, match=r"asked for 5000\.00 h but .*manifest\.jsonl holds only"):
        build_subset(corpus, tmp_path, hours=5000, progress=False)


def test_a_source_split_too_small_for_its_share_is_refused(corpus, tmp_path):
    with pytest.raises(KidconsoleError, match="validation needs 12.00 h but the source validation split holds only"):
        build_subset(corpus, tmp_path, hours=60, split_shares=(0.5, 0.2, 0.3), progress=False)


def test_bad_options_name_the_option(corpus, tmp_path):
    with pytest.raises(KidconsoleError, match="split_shares"):
        build_subset(corpus, tmp_path, hours=10, split_shares=(0.5, 0.6, 0.1), progress=False)
    with pytest.raises(KidconsoleError, match="fractions"):
        build_subset(corpus, tmp_path, hours=10, fractions=(0.6, 0.2, 1.0), progress=False)
    with pytest.raises(KidconsoleError, match="last curriculum fraction must be 1"):
        build_subset(corpus, tmp_path, hours=10, fractions=(0.2, 0.6), progress=False)
    with pytest.raises(KidconsoleError, match="age_edges"):
        build_subset(corpus, tmp_path, hours=10, age_edges=(9, 5), progress=False)
    with pytest.raises(KidconsoleError, match="not both"):
        build_subset(corpus, tmp_path, hours=10, split_hours=(1, 1, 1), progress=False)
