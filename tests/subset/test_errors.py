"""Impossible requests and bad rows: clear errors, or skipped and counted rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kidconsole.errors import KidconsoleError
from kidconsole.subset.build import build_subset



def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def corpus_rows(ages_by_split: dict[str, list[float]], per_speaker: int = 30, seed: int = 0):
    """Speakers with the given ages per source split, ``per_speaker`` utterances each."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, ages in ages_by_split.items():
        for k, age in enumerate(ages):
            spk = f"{split}-{k}"
            for j in range(per_speaker):
                rows.append({"id": f"{spk}-{j}", "audio": f"{spk}/{j}.wav", "duration": float(rng.uniform(1, 9)),
                             "sample_rate": 16000, "speaker": spk, "split": split, "text": "", "phones": "",
                             "age": age, "snr": float(rng.uniform(5, 35))})
    return rows


def test_a_big_stratum_without_speakers_in_a_pool_is_refused(tmp_path):
    # 5-6 year olds hold a third of the corpus but none of them is in the source test split
    rows = corpus_rows({"train": [4, 6, 8] * 10, "validation": [4, 6, 8] * 3, "test": [4, 8] * 3})
    manifest = write(tmp_path / "m.jsonl", rows)
    with pytest.raises(KidconsoleError, match=r"stratum age 5-6 \(\d+\.\d+% of the corpus's hours\) has no "
                                              r"speakers in the source test pool"):
        build_subset(manifest, tmp_path / "out", hours=1, progress=False)
    # pooling the source splits makes it possible
    result = build_subset(manifest, tmp_path / "pooled", hours=1, use_source_splits=False, progress=False)
    assert result.outputs["test"].shares["age"]["5-6"] > 0.2


def test_a_tiny_stratum_without_speakers_is_only_a_warning(tmp_path):
    rows = corpus_rows({"train": [4, 6, 8] * 20 + [30], "validation": [4, 6, 8] * 3, "test": [4, 6, 8] * 3})
    manifest = write(tmp_path / "m.jsonl", rows)
    result = build_subset(manifest, tmp_path / "out", hours=1, progress=False)
    assert any("stratum age 18+" in w and "validation" in w for w in result.warnings)
    assert "18+" in (tmp_path / "out" / "report.md").read_text()


def test_malformed_rows_are_skipped_counted_and_quoted(tmp_path):
    rows = corpus_rows({"train": [4, 6, 8] * 4, "validation": [4, 6, 8], "test": [4, 6, 8]})
    lines = [json.dumps(r) for r in rows]
    lines[3] = "{not json"
    lines[10] = json.dumps({**rows[10], "duration": "n/a"})
    lines[20] = json.dumps({k: v for k, v in rows[20].items() if k != "speaker"})
    lines[30] = json.dumps({**rows[30], "split": "dev-clean"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    result = build_subset(manifest, tmp_path / "out", hours=0.5, progress=False)
    assert result.skipped == 4
    assert result.skipped_examples[0] == f"{manifest}:4: not JSON"
    assert any(e.startswith(f"{manifest}:11: duration 'n/a'") for e in result.skipped_examples)
    assert any(e.startswith(f"{manifest}:21: lacks 'speaker'") for e in result.skipped_examples)
    assert any(e.startswith(f"{manifest}:31: split 'dev-clean'") for e in result.skipped_examples)


def test_a_manifest_without_usable_rows_is_refused(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("garbage\n", encoding="utf-8")
    with pytest.raises(KidconsoleError, match=r"no usable manifest rows; first problems: .*m\.jsonl:1: not JSON"):
        build_subset(manifest, tmp_path / "out", hours=1, progress=False)
    with pytest.raises(KidconsoleError, match="cannot open manifest"):
        build_subset(tmp_path / "missing.jsonl", tmp_path / "out", hours=1, progress=False)


def test_a_speaker_in_two_source_splits_is_kept_in_one(tmp_path):
    rows = corpus_rows({"train": [4, 6, 8] * 6, "validation": [4, 6, 8] * 2, "test": [4, 6, 8] * 2})
    # the same child recorded again, filed under test
    rows += [{**r, "id": r["id"] + "-again", "split": "test"} for r in rows if r["speaker"] == "train-0"][:5]
    manifest = write(tmp_path / "m.jsonl", rows)
    result = build_subset(manifest, tmp_path / "out", max_val_samples=None, progress=False)
    assert any("1 speakers appear in more than one source split" in w for w in result.warnings)
    test_rows = (tmp_path / "out" / "test.jsonl").read_text().splitlines()
    assert test_rows and all(json.loads(line)["speaker"] != "train-0" for line in test_rows)


def test_the_last_line_without_a_newline_is_copied_whole(tmp_path):
    rows = corpus_rows({"train": [4, 6, 8] * 2, "validation": [4, 6, 8], "test": [4, 6, 8]})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")  # no final newline
    build_subset(manifest, tmp_path / "out", max_val_samples=None, progress=False)
    text = (tmp_path / "out" / "test.jsonl").read_text()
    assert text.endswith("\n") and all(json.loads(line) for line in text.splitlines())
