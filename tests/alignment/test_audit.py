"""``kidconsole audit`` finds planted label errors; ``subset build --exclude`` leaves them out and says how many."""

from __future__ import annotations

import dataclasses
import json

import pytest

from kidconsole.manifest import read_manifest, write_manifest


def plant(rows, every: int = 8) -> dict[str, str]:
    """Every ``every``-th row mislabelled, in turn with another row's phones and with half its words (the
    label errors synth.py plants); returns id -> kind."""
    planted = {}
    for k in range(0, len(rows), every):
        r = rows[k]
        if len(planted) % 2 == 0:
            r.phones = rows[(k + 3) % len(rows)].phones
            planted[r.id] = "wrong_sentence"
        else:
            words = r.phones.split(" | ")
            r.phones = " | ".join(words[:max(1, len(words) // 2)]) if len(words) > 1 else " ".join(r.phones.split()[:1])
            planted[r.id] = "truncated_transcript"
    return planted


@pytest.mark.slow
def test_the_audit_finds_planted_label_errors_and_exclude_leaves_them_out(tone_model, tones, tmp_path, kidconsole):
    # the pool: utterances the model never trained on (the tone model saw only the train split)
    rows = [dataclasses.replace(r, split="train") for r in read_manifest(tones["test"])] + \
           [dataclasses.replace(r, split="train") for r in read_manifest(tones["valid"])]
    planted = plant(rows, every=5)
    pool = tmp_path / "pool.jsonl"
    write_manifest(pool, rows)
    out = tmp_path / "audit" / "suspects.jsonl"
    done = kidconsole("audit", tone_model, pool, "-o", out, "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    flagged = {r.id for r in read_manifest(out)}
    hit = flagged & set(planted)
    assert len(hit) >= 0.8 * len(planted), (planted, flagged)        # recall
    assert len(hit) >= 0.8 * len(flagged), (planted, flagged)        # precision
    report = json.loads((tmp_path / "audit" / "suspects.report.json").read_text())
    assert report["aligned"] == len(rows) and {"age_group", "snr"} <= set(report["spread"])
    assert all(d["reason"] for d in report["suspects"])
    assert sum(r["suspects"] for r in report["spread"]["age_group"]) == len(flagged)
    assert (tmp_path / "audit" / "suspects.report.md").read_text().startswith("# Label audit")
    assert f"{len(flagged)} suspects to" in done.stderr
    # the suspects' rows are the manifest's own lines
    lines = {json.loads(line)["id"]: line for line in pool.read_text().splitlines()}
    assert all(line in lines.values() for line in out.read_text().splitlines())

    # run again: the alignments are read back, not computed anew, and --top N takes the N worst
    again = kidconsole("audit", tone_model, pool, "-o", out, "--no-progress", "--top", "2")
    assert again.returncode == 0 and len(list(read_manifest(out))) == 2

    built = kidconsole("subset", "build", pool, "-o", tmp_path / "sub", "--split", "1/0/0", "--fractions", "1",
                       "--exclude", tmp_path / "audit" / "suspects.jsonl", "--no-progress")
    assert built.returncode == 0, built.stderr
    said = " ".join(built.stdout.split())  # Rich wraps at the terminal's width
    assert "excluded 2 rows" in said and "of the 2 ids listed in" in said
    kept = {r.id for r in read_manifest(tmp_path / "sub" / "train.jsonl")}
    assert kept == {r.id for r in rows} - {r.id for r in read_manifest(out)}


def test_exclude_counts_rows_left_out_and_ids_the_manifest_lacks(tmp_path, kidconsole):
    from kidconsole.manifest import Utterance

    rows = [Utterance(id=f"u{k}", audio=f"/a/{k}.wav", duration=2.0 + k % 3, sample_rate=16000,
                      speaker=f"s{k % 6}", split="train", text="", phones="A N", age=5.0 + k % 5, snr=20.0)
            for k in range(30)]
    write_manifest(tmp_path / "m.jsonl", rows)
    (tmp_path / "ids.txt").write_text("u3\nu7\nnot-there\n")
    done = kidconsole("subset", "build", tmp_path / "m.jsonl", "-o", tmp_path / "out", "--split", "1/0/0",
                      "--fractions", "1", "--exclude", tmp_path / "ids.txt", "--no-progress")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())  # Rich wraps at the terminal's width
    assert "excluded 2 rows" in said and "1 of them are not in the manifest" in said
    ids = {r.id for r in read_manifest(tmp_path / "out" / "train.jsonl")}
    assert "u3" not in ids and "u7" not in ids and len(ids) == 28
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["excluded"]["rows"] == 2 and report["excluded"]["not_found"] == 1
    assert "## Excluded" in (tmp_path / "out" / "report.md").read_text()
    (tmp_path / "bad.jsonl").write_text('{"no_id": 1}\n')
    bad = kidconsole("subset", "build", tmp_path / "m.jsonl", "-o", tmp_path / "out2", "--split", "1/0/0",
                     "--fractions", "1", "--exclude", tmp_path / "bad.jsonl", "--no-progress")
    assert bad.returncode == 2 and "bad.jsonl:1: a line without a string id" in bad.stderr
