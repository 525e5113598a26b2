import json
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from kidconsole.corpus.filters import FilterConfig
from kidconsole.corpus.index import IndexOptions, build_index, side_paths
from kidconsole.manifest import read_manifest


def _index(root, out, **kw):
    kw.setdefault("processes", 1)
    return build_index(root, out, progress=False, **kw)


def _rejects(summary):
    return [json.loads(line) for line in Path(summary.rejects).read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("fixture", ["synth_folders", "synth_zipped"])
def test_every_bad_file_is_counted_with_its_reason(request, tmp_path, fixture):
    synth = request.getfixturevalue(fixture)
    s = _index(synth.out_dir, tmp_path / "m.jsonl", processes=2)
    assert s.kept == synth.utterances
    assert s.rejected == Counter(synth.bad_files.values())
    listed = {r["label"]: r["reason"] for r in _rejects(s)}
    assert listed == synth.bad_files
    assert all(r["detail"] for r in _rejects(s))


def test_zipped_and_extracted_corpora_give_the_same_rows(tmp_path, synth_folders, synth_zipped):
    a = {u.id: u for u in read_manifest(_index(synth_folders.out_dir, tmp_path / "a.jsonl").manifest)}
    b = {u.id: u for u in read_manifest(_index(synth_zipped.out_dir, tmp_path / "b.jsonl").manifest)}
    assert a.keys() == b.keys()
    for key in a:
        ua, ub = a[key], b[key]
        assert "::" in ub.audio and "::" not in ua.audio
        assert (ua.phones, ua.text, ua.speaker, ua.duration, ua.age, ua.snr, ua.split) == \
               (ub.phones, ub.text, ub.speaker, ub.duration, ub.age, ub.snr, ub.split)


def test_manifest_rows_are_complete_and_unique(tmp_path, synth_folders):
    s = _index(synth_folders.out_dir, tmp_path / "m.jsonl")
    rows = list(read_manifest(s.manifest))
    assert len({u.id for u in rows}) == len(rows) == s.kept
    assert {u.split for u in rows} <= {"train", "validation", "test"}
    for u in rows:
        assert u.phones and u.sample_rate == 16000 and u.channels == 1 and 0.5 <= u.duration <= 12
        assert u.speaker.startswith("spk-") and u.age is not None and u.gender in ("M", "F")
        assert u.id.startswith(u.split + "/")
    summary = json.loads(side_paths(s.manifest)[1].read_text())
    assert summary["kept"] == s.kept and summary["rejected"] == dict(s.rejected)


def test_rerun_reuses_units_and_reparses_only_what_changed(tmp_path, en_label, make_wav, put_pair):
    root = tmp_path / "c" / "1.Training"
    for spk in ("S1", "S2"):
        for i in range(3):
            en_label["Basic"]["NumberOfSpeaker"] = spk[1:]
            en_label["File"]["FileName"] = f"{spk}_{i}.wav"
            put_pair(root / "TL_1", root / "TS_1", f"{spk}/{spk}_{i}", en_label, make_wav(1.0))
    out = tmp_path / "m.jsonl"
    first = _index(tmp_path / "c", out)
    assert (first.kept, first.cached_units, first.units) == (6, 0, 2)
    again = _index(tmp_path / "c", out)
    assert again.cached_units == 2 and again.kept == 6
    assert out.read_text() == out.read_text()
    en_label["Transcription"]["LabelText"] = "엄마"
    en_label["File"]["FileName"] = "S2_0.wav"
    en_label["Basic"]["NumberOfSpeaker"] = "2"
    put_pair(root / "TL_1", root / "TS_1", "S2/S2_0", en_label, None)
    third = _index(tmp_path / "c", out)
    assert third.cached_units == 1
    assert {u.id: u.text for u in read_manifest(out)}["train/S2_0"] == "엄마"
    assert _index(tmp_path / "c", out, resume=False).cached_units == 0


def test_korean_schema_corpus_from_zip(tmp_path, ko_label, make_wav, put_pair):
    split = tmp_path / "2.Validation"
    put_pair(split / "라벨링데이터" / "VL_1.zip", split / "원천데이터" / "VS_1.zip",
             "6030_G1A1E7_KJW/6030_G1A1E7_KJW_000001", ko_label, make_wav(1.88))
    s = _index(tmp_path, tmp_path / "m.jsonl")
    [u] = list(read_manifest(s.manifest))
    assert u.split == "validation" and u.age_range == [10.0, 19.0] and u.age is None
    assert u.text == "몇 리터로 드릴까요?" and u.phones.startswith("M iEO N | N I")
    assert u.audio.endswith("VS_1.zip::6030_G1A1E7_KJW/6030_G1A1E7_KJW_000001.wav")
    assert u.quality is None and u.snr is None and not u.snr_estimated


def test_missing_snr_is_estimated_and_marked_when_asked(tmp_path, synth_folders):
    rows = list(read_manifest(_index(synth_folders.out_dir, tmp_path / "m.jsonl",
                                     options=IndexOptions(estimate_snr=True)).manifest))
    estimated = [u for u in rows if u.snr_estimated]
    measured = [u for u in rows if not u.snr_estimated]
    assert estimated and measured
    assert all(u.snr is not None for u in estimated)
    plain = list(read_manifest(_index(synth_folders.out_dir, tmp_path / "p.jsonl").manifest))
    assert sum(u.snr is None for u in plain) == len(estimated)


def test_filters_count_each_reason(tmp_path, en_label, make_wav, put_pair):
    root = tmp_path / "1.Training"
    cases = {
        "ok": ({}, make_wav(1.0)),
        "stereo": ({}, make_wav(1.0, channels=2)),
        "long": ({}, make_wav(4.0)),
        "bad_q": ({("Other", "QualityStatus"): "Bad"}, make_wav(1.0)),
        "nospk": ({("Basic", "NumberOfSpeaker"): "N/A"}, make_wav(1.0)),
        "markup_only": ({("Transcription", "LabelText"): "b/ n/"}, make_wav(1.0)),
        "hanja": ({("Transcription", "LabelText"): "漢字 엄마"}, make_wav(1.0)),
        "badnum": ({("File", "FileLength"): "long"}, make_wav(1.0)),
    }
    for name, (changes, wav) in cases.items():
        lab = json.loads(json.dumps(en_label))
        lab["File"]["FileName"] = name + ".wav"
        for (sec, key), value in changes.items():
            lab[sec][key] = value
        put_pair(root / "TL_1", root / "TS_1", name, lab, wav)
    (root / "TL_1" / "dup").mkdir()
    lab = json.loads(json.dumps(en_label))
    lab["File"]["FileName"] = "ok.wav"
    (root / "TL_1" / "dup" / "ok_again.json").write_text(json.dumps(lab))
    s = _index(tmp_path, tmp_path / "m.jsonl",
               options=IndexOptions(filters=FilterConfig(max_duration=3.0)))
    assert s.kept == 1
    reasons = {Path(r["label"].split("::")[-1]).stem: r["reason"] for r in _rejects(s)}
    assert reasons == {"stereo": "channels", "long": "too_long", "bad_q": "quality", "nospk": "no_speaker",
                       "markup_only": "empty_text", "hanja": "unmappable_text", "badnum": "bad_value",
                       "ok_again": "duplicate_id"}


def test_bad_member_inside_a_label_zip_does_not_stop_the_index(tmp_path, en_label, make_wav, put_pair):
    lz, az = tmp_path / "1.Training" / "TL_1.zip", tmp_path / "1.Training" / "TS_1.zip"
    put_pair(lz, az, "a/x", en_label, make_wav())
    with zipfile.ZipFile(lz, "a") as zf:
        zf.writestr("a/garbage.json", b"\x00\x01{{")
    s = _index(tmp_path, tmp_path / "m.jsonl")
    assert s.kept == 1 and s.rejected == Counter({"bad_json": 1})


def test_missing_root_is_a_clear_error(tmp_path):
    from kidconsole.errors import KidconsoleError

    with pytest.raises(KidconsoleError, match="does not exist"):
        _index(tmp_path / "nope", tmp_path / "m.jsonl")


def test_root_without_labels_is_a_clear_error(tmp_path):
    from kidconsole.errors import KidconsoleError

    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(KidconsoleError, match="no label files"):
        _index(tmp_path, tmp_path / "m.jsonl")
