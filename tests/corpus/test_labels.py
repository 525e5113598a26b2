import json

import pytest

from kidconsole.corpus.labels import LabelError, load_label, parse_label, speaker_id


def test_english_schema_gives_every_manifest_field(en_label):
    lab = parse_label(en_label, "x.json")
    assert lab.schema == "en"
    assert lab.file_name == "C0012_0001.wav"
    assert lab.text == "손을 잡고"
    assert (lab.age, lab.age_range, lab.gender) == (7.0, None, "F")
    assert (lab.sample_rate, lab.channels, lab.duration) == (16000, 1, 2.5)
    assert lab.snr == 25.0
    assert lab.quality == "Good"
    assert lab.speaker_number == "12"


def test_korean_schema_takes_transcript_range_age_and_na_snr(ko_label):
    lab = parse_label(ko_label, "k.json")
    assert lab.schema == "ko"
    assert lab.text == "몇 리터로 드릴까요?"
    assert lab.age is None and lab.age_range == [10.0, 19.0]
    assert lab.snr is None and "snr_raw" not in lab.extra
    assert lab.file_name == "6030_G1A1E7_KJW_000001.wav"
    assert (lab.sample_rate, lab.channels, lab.duration) == (16000, 1, 1.88)
    assert lab.gender == "M"
    assert lab.quality is None  # this variant has no quality field: nothing to filter on


def test_korean_schema_falls_back_to_the_prompt_when_no_transcription(ko_label):
    ko_label["전사정보"]["TransLabelText"] = ""
    assert parse_label(ko_label, "k.json").text == "몇 리터로 드릴까요?"


def test_speakers_sharing_initials_stay_apart_and_one_serial_is_one_speaker(en_label):
    a = parse_label(en_label, "a")
    other = json.loads(json.dumps(en_label))
    other["Basic"]["NumberOfSpeaker"] = "0013"
    b = parse_label(other, "b")
    assert en_label["Speaker"]["SpeakerName"] == other["Speaker"]["SpeakerName"]
    assert speaker_id(a.speaker_number) != speaker_id(b.speaker_number)
    for same in (12, "12", " 0012 ", 12.0):
        en_label["Basic"]["NumberOfSpeaker"] = same
        assert speaker_id(parse_label(en_label, "c").speaker_number) == speaker_id(a.speaker_number)
    assert "KMS" not in speaker_id(a.speaker_number)


def test_speaker_scope_separates_colliding_serials():
    assert speaker_id("12", "setA") != speaker_id("12", "setB")
    assert speaker_id("12") == speaker_id("12")


@pytest.mark.parametrize("raw, snr", [("25dB", 25.0), ("+30", 30.0), ("N/A", None), ("30", 30.0),
                                      (18, 18.0), (" 12.5 dB", 12.5), ("-3dB", -3.0), ("", None)])
def test_snr_strings(en_label, raw, snr):
    en_label["Wav"]["SignalToNoiseRatio"] = raw
    assert parse_label(en_label, "x").snr == snr


def test_missing_snr_key_is_none(en_label):
    del en_label["Wav"]["SignalToNoiseRatio"]
    assert parse_label(en_label, "x").snr is None


def test_unparseable_snr_is_kept_raw_not_guessed(en_label):
    en_label["Wav"]["SignalToNoiseRatio"] = "loud"
    lab = parse_label(en_label, "x")
    assert lab.snr is None and lab.extra["snr_raw"] == "loud"


@pytest.mark.parametrize("field, value, expected", [
    (("Speaker", "Age"), "8", 8.0), (("Speaker", "Age"), 8, 8.0), (("Speaker", "Age"), "8세", 8.0),
    (("File", "FileLength"), "3.25", 3.25), (("File", "FileLength"), 3, 3.0),
    (("Wav", "SamplingRate"), "16000", 16000), (("Wav", "SamplingRate"), 16000.0, 16000),
])
def test_numbers_given_as_strings(en_label, field, value, expected):
    en_label[field[0]][field[1]] = value
    lab = parse_label(en_label, "x")
    got = {"Age": lab.age, "FileLength": lab.duration, "SamplingRate": lab.sample_rate}[field[1]]
    assert got == expected


@pytest.mark.parametrize("text, rng", [("10~19", [10.0, 19.0]), ("3-5", [3.0, 5.0]), ("19~10", [10.0, 19.0])])
def test_age_range_is_kept_as_a_range(en_label, text, rng):
    en_label["Speaker"]["Age"] = text
    lab = parse_label(en_label, "x")
    assert lab.age is None and lab.age_range == rng


def test_bad_number_names_the_file_and_key(en_label):
    en_label["Wav"]["SamplingRate"] = "sixteen k"
    with pytest.raises(LabelError) as e:
        parse_label(en_label, "TL_1.zip::a/b.json")
    assert e.value.reason == "bad_value"
    assert "TL_1.zip::a/b.json" in str(e.value) and "Wav.SamplingRate" in str(e.value)


def test_truncated_json_is_bad_json_with_the_line(en_label):
    raw = json.dumps(en_label, ensure_ascii=False, indent=1).encode()[:200]
    with pytest.raises(LabelError) as e:
        load_label(raw, "a.json")
    assert e.value.reason == "bad_json" and "a.json" in str(e.value) and "line" in str(e.value)


def test_bom_is_accepted(en_label):
    raw = b"\xef\xbb\xbf" + json.dumps(en_label, ensure_ascii=False).encode()
    assert load_label(raw, "a.json").text == "손을 잡고"


def test_json_of_another_shape_is_bad_schema():
    for data in ([1, 2], {"foo": 1}):
        with pytest.raises(LabelError) as e:
            parse_label(data, "x.json")
        assert e.value.reason == "bad_schema"


def test_empty_transcript_is_empty_text_not_an_error(en_label):
    en_label["Transcription"]["LabelText"] = "  "
    assert parse_label(en_label, "x").text == ""
