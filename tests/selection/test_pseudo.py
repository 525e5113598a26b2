"""``kidconsole pseudo``: rows with decoded phones, pseudo: true and their confidence; below the threshold
(the default or the age bucket's) excluded; unusable audio skipped and counted."""

from __future__ import annotations

import shutil

import pytest

from kidconsole.manifest import read_manifest
from trainers.pseudo import clean_phones


def _run(tiny_model, source, out, *extra) -> None:
    from trainers.pseudo import main

    assert main([str(tiny_model), str(source), "-o", str(out), "--no-progress", *map(str, extra)]) == 0


def test_pseudo_rows_carry_phones_and_confidence_and_drop_those_below_the_threshold(tiny_model, tones, tmp_path):
    everything = tmp_path / "all.jsonl"
    _run(tiny_model, tones["train"], everything, "--min-confidence", 0)
    rows = list(read_manifest(everything))
    assert len(rows) == 30
    assert all(r.pseudo and 0 < r.confidence <= 1 and r.phones for r in rows)
    confidences = sorted(r.confidence for r in rows)
    threshold = confidences[len(confidences) // 2]
    if threshold == confidences[0]:
        pytest.skip("the tiny model gave every utterance the same confidence")
    kept_path = tmp_path / "kept.jsonl"
    _run(tiny_model, tones["train"], kept_path, "--min-confidence", threshold)
    kept = {r.id for r in read_manifest(kept_path)}
    assert kept == {r.id for r in rows if r.confidence >= threshold}
    assert 0 < len(kept) < 30
    assert '"pseudo":true' in kept_path.read_text()


def test_pseudo_takes_an_age_buckets_own_threshold(tiny_model, tones, tmp_path):
    out = tmp_path / "p.jsonl"
    _run(tiny_model, tones["train"], out, "--min-confidence", 0, "--age-confidence", "5-6=1.0")
    ages = {r.age for r in read_manifest(out)}
    assert ages and not ages & {5.0, 6.0}


def test_pseudo_of_a_folder_names_speakers_by_folder_and_skips_bad_audio(tiny_model, tones, tmp_path):
    rows = list(read_manifest(tones["train"]))
    for k, r in enumerate(rows[:6]):
        d = tmp_path / "audio" / f"child{k % 2}"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(r.audio, d / f"u{k}.wav")
    (tmp_path / "audio" / "child0" / "bad.wav").write_bytes(b"not a wav")
    out = tmp_path / "p.jsonl"
    _run(tiny_model, tmp_path / "audio", out, "--min-confidence", 0)
    got = list(read_manifest(out))
    assert {r.speaker for r in got} == {"child0", "child1"} and len(got) == 6
    assert all(r.id.startswith(r.speaker + "/") and r.sample_rate == 16000 for r in got)


def test_pseudo_cli_names_an_unknown_age_bucket(kidconsole, tiny_model, tones, tmp_path):
    r = kidconsole("pseudo", tiny_model, tones["train"], "-o", tmp_path / "p.jsonl", "--min-confidence", "0.5",
                   "--age-confidence", "6-7=0.9")
    assert r.returncode == 2 and "'6-7=0.9'" in r.stderr and "5-6" in r.stderr


def test_clean_phones_keeps_inventory_phones_and_one_separator_between_words():
    assert clean_phones("| A <unk> | | N <pad> |") == "A | N"
