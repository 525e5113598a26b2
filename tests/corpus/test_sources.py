from pathlib import Path

import pytest

from kidconsole.corpus.sources import detect_split, discover, find_audio, mirror


@pytest.mark.parametrize("parts, split", [
    (("1.Training", "라벨링데이터", "TL_1.zip"), "train"),
    (("2.Validation", "x"), "validation"),
    (("3.Test",), "test"),
    (("data", "Training"), "train"),
    (("data", "nothing"), None),
])
def test_split_from_path(parts, split):
    assert detect_split(parts) == split


def test_mirror_maps_label_side_to_source_side():
    assert mirror("/c/1.Training/라벨링데이터/TL_01.zip") == "/c/1.Training/원천데이터/TS_01.zip"
    assert mirror("/c/2.Validation/LabelingData/VL_3/a") == "/c/2.Validation/SourceData/VS_3/a"
    assert mirror("/c/TLX/a") == "/c/TLX/a"  # only the archive prefix is rewritten


def _find(root: Path):
    found = discover(root)
    out = {}
    for unit in found.units:
        for m in unit.members:
            out[m] = find_audio(unit, m, None, found.audio.get(unit.split, ()))
    return found, out


@pytest.mark.parametrize("label_zip, audio_zip", [(False, False), (True, True), (True, False), (False, True)])
def test_labels_pair_with_audio_zipped_or_extracted(tmp_path, en_label, make_wav, put_pair, label_zip, audio_zip):
    split = tmp_path / "1.Training"
    lroot = split / "라벨링데이터" / ("TL_01.zip" if label_zip else "TL_01")
    aroot = split / "원천데이터" / ("TS_01.zip" if audio_zip else "TS_01")
    put_pair(lroot, aroot, "S1/u1", en_label, make_wav())
    put_pair(lroot, aroot, "S1/u2", en_label, None)  # its audio is missing
    found, pairs = _find(tmp_path)
    assert found.labels == 2 and {u.split for u in found.units} == {"train"}
    loc = pairs["S1/u1.json" if label_zip else "u1.json"]
    assert loc is not None and loc.endswith("u1.wav")
    assert ("::" in loc) == audio_zip
    assert pairs["S1/u2.json" if label_zip else "u2.json"] is None


def test_label_file_name_wins_over_its_stem(tmp_path, en_label, make_wav, put_pair):
    en_label["File"]["FileName"] = "other_name.wav"
    lroot, aroot = tmp_path / "2.Validation" / "VL_1", tmp_path / "2.Validation" / "VS_1"
    put_pair(lroot, aroot, "a", en_label, None)
    put_pair(lroot, aroot, "other_name", {"x": 1}, make_wav())
    found = discover(tmp_path)
    unit = next(u for u in found.units if "a.json" in u.members)
    assert unit.split == "validation"
    assert find_audio(unit, "a.json", "other_name.wav", found.audio["validation"]).endswith("other_name.wav")


def test_audio_beside_the_label(tmp_path, en_label, make_wav, put_pair):
    put_pair(tmp_path / "3.Test", tmp_path / "3.Test", "spk/x", en_label, make_wav())
    found, pairs = _find(tmp_path)
    assert pairs["x.json"] == str(tmp_path / "3.Test" / "spk" / "x.wav")


def test_own_layout_falls_back_to_the_split_audio(tmp_path, en_label, make_wav, put_pair):
    put_pair(tmp_path / "json" / "a", tmp_path / "audio" / "deep" / "b", "x", en_label, make_wav())
    found, pairs = _find(tmp_path)
    assert pairs["x.json"].endswith("audio/deep/b/x.wav")
    assert found.units[0].split == "train"  # no split named: the default


def test_corrupt_archive_is_reported_not_fatal(tmp_path, en_label, make_wav, put_pair):
    (tmp_path / "TL_9.zip").write_bytes(b"not a zip")
    put_pair(tmp_path / "TL_1", tmp_path / "TS_1", "x", en_label, make_wav())
    found = discover(tmp_path)
    assert found.labels == 1
    assert found.unreadable and found.unreadable[0][0].endswith("TL_9.zip")


def test_units_are_chunked_and_fingerprints_follow_changes(tmp_path, en_label, make_wav, put_pair):
    for i in range(5):
        put_pair(tmp_path / "TL_1", tmp_path / "TS_1", f"u{i}", en_label, make_wav(0.5))
    a = discover(tmp_path, chunk=2)
    assert [len(u.members) for u in a.units] == [2, 2, 1]
    assert [u.fingerprint for u in discover(tmp_path, chunk=2).units] == [u.fingerprint for u in a.units]
    (tmp_path / "TL_1" / "u4.json").write_text('{"changed": true, "Basic": {}}')
    b = discover(tmp_path, chunk=2)
    assert [x.fingerprint == y.fingerprint for x, y in zip(a.units, b.units)] == [True, True, False]
