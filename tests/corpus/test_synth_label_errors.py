"""synth.py's planted label errors and phone times: what the label audit and the alignment are measured on."""

import json
from pathlib import Path

import soundfile as sf

from kidconsole.corpus.synth import (ERROR_KINDS, PHONE_TIMES_FILE, PLANTED_FILE, SHIFTED, TRUNCATED, WRONG_SENTENCE,
                                     synthesize)

SMALL = dict(adults=2, children_per_age=1, utterances_per_speaker=6)


def _label(root: Path, uid: str) -> dict:
    stem = uid.split("/")[1]
    return json.loads(next(root.rglob(f"{stem}.json")).read_text(encoding="utf-8"))


def test_a_share_of_the_training_split_gets_each_kind_of_label_error_and_the_rest_is_unchanged(tmp_path):
    clean = synthesize(tmp_path / "clean", seed=5, phone_times=True, **SMALL)
    bad = synthesize(tmp_path / "bad", seed=5, label_errors=0.25, phone_times=True, **SMALL)
    listed = [json.loads(line) for line in (bad.out_dir / PLANTED_FILE).read_text().splitlines()]
    train = clean.by_split["train"]
    assert len(listed) == len(bad.planted) == round(0.25 * train)
    assert {d["kind"] for d in listed} == set(ERROR_KINDS) and all(d["id"].startswith("train/") for d in listed)
    for d in listed:
        label = _label(bad.out_dir, d["id"])["Transcription"]["LabelText"]
        said = _label(clean.out_dir, d["id"])["Transcription"]["LabelText"]
        assert label == d["label"] and said == d["said"]
        if d["kind"] == WRONG_SENTENCE:
            assert label != said
        elif d["kind"] == TRUNCATED:
            assert said.startswith(label) and len(label.split()) < len(said.split())
        else:
            assert d["kind"] == SHIFTED and label == said
        stem = d["id"].split("/")[1]
        a = sf.info(str(next(bad.out_dir.rglob(f"{stem}.wav")))).frames
        b = sf.info(str(next(clean.out_dir.rglob(f"{stem}.wav")))).frames
        assert (a < b) if d["kind"] == SHIFTED else (a == b)
    # every other utterance is byte for byte the clean corpus's
    planted = {d["id"].split("/")[1] for d in listed}
    for wav in clean.out_dir.rglob("*.wav"):
        if wav.stem not in planted:
            assert wav.read_bytes() == (bad.out_dir / wav.relative_to(clean.out_dir)).read_bytes()


def test_phone_times_follow_the_phones_of_each_utterance_in_order(tmp_path):
    s = synthesize(tmp_path / "c", seed=2, phone_times=True, **SMALL)
    times = [json.loads(line) for line in (s.out_dir / PHONE_TIMES_FILE).read_text().splitlines()]
    assert len(times) == s.utterances
    from kidconsole.corpus.index import build_index
    from kidconsole.manifest import read_manifest

    build_index(s.out_dir, tmp_path / "m.jsonl", progress=False)
    phones = {r.id: r.phones.split() for r in read_manifest(tmp_path / "m.jsonl")}
    for d in times:
        assert [p for p, _, _ in d["phones"]] == phones[d["id"]]
        starts = [a for _, a, _ in d["phones"]]
        assert starts == sorted(starts) and all(b > a for _, a, b in d["phones"])
        assert all(d["phones"][k][2] == d["phones"][k + 1][1] or d["phones"][k + 1][1] > d["phones"][k][2]
                   for k in range(len(d["phones"]) - 1))


def test_a_mispronounced_phone_is_said_as_its_substitute_under_the_canonical_label(tmp_path):
    from kidconsole.corpus.synth import MISPRONOUNCED_FILE, SUBSTITUTIONS

    clean = synthesize(tmp_path / "clean", seed=6, phone_times=True, **SMALL)
    said = synthesize(tmp_path / "said", seed=6, phone_times=True, mispronounce=0.5, **SMALL)
    listed = [json.loads(line) for line in (said.out_dir / MISPRONOUNCED_FILE).read_text().splitlines()]
    assert listed and all(SUBSTITUTIONS[d["canonical"]] == d["said"] for d in listed)
    times = {d["id"]: [p for p, _, _ in d["phones"]] for d in
             map(json.loads, (said.out_dir / PHONE_TIMES_FILE).read_text().splitlines())}
    clean_times = {d["id"]: [p for p, _, _ in d["phones"]] for d in
                   map(json.loads, (clean.out_dir / PHONE_TIMES_FILE).read_text().splitlines())}
    for d in listed:
        assert times[d["id"]][d["index"]] == d["said"] and clean_times[d["id"]][d["index"]] == d["canonical"]
        # the label is the canonical one
        assert _label(said.out_dir, d["id"])["Transcription"] == _label(clean.out_dir, d["id"])["Transcription"]
    adults = {f"S{1000 + k:05d}" for k in range(1, SMALL["adults"] + 1)}  # speakers are numbered adults first
    assert not {d["id"].split("/")[1].split("_")[0] for d in listed} & adults  # children only
