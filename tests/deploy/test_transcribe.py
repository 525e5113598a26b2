"""``kidconsole transcribe``: files, folders, manifests, bad files, every model form."""

from __future__ import annotations

import json

from kidconsole.cli import main


def _run(capsys, *args) -> tuple[int, list[dict], str]:
    code = main(["transcribe", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_files_of_any_rate_and_channel_count_give_the_same_phones(trained_run, audio_dir, capsys):
    files = [audio_dir / "a16k.wav", audio_dir / "a44k-stereo.flac", audio_dir / "a22k.ogg"]
    code, recs, err = _run(capsys, trained_run, *files)
    assert code == 0, err
    assert [r["id"] for r in recs] == [str(f) for f in files]
    for r in recs:
        assert {"phones", "hangul", "confidence", "duration", "processing_seconds"} <= r.keys()
        assert len(r["confidence"]) == len(r["phones"].split()) and all(0 < c <= 1 for c in r["confidence"])
        assert abs(r["duration"] - recs[0]["duration"]) < 0.01 and r["processing_seconds"] > 0
    assert recs[0]["phones"] and recs[0]["hangul"].strip()
    # resampled and mixed down, the same utterance decodes (almost) alike
    from kidconsole.metrics import count_errors, phone_tokens

    for r in recs[1:]:
        assert count_errors([phone_tokens(recs[0]["phones"])], [phone_tokens(r["phones"])]).rate < 0.25
    assert "3 transcribed" in err


def test_a_folder_is_searched_recursively_and_a_bad_file_is_skipped_with_its_reason(trained_run, audio_dir, capsys):
    code, recs, err = _run(capsys, trained_run, audio_dir)
    assert code == 1  # something was skipped
    by_name = {r["audio"].rsplit("/", 1)[-1]: r for r in recs}
    assert set(by_name) == {"a16k.wav", "a44k-stereo.flac", "a22k.ogg", "b.wav", "broken.wav"}  # notes.txt ignored
    assert "error" in by_name["broken.wav"] and "broken.wav" in by_name["broken.wav"]["error"]
    assert all("phones" in r for n, r in by_name.items() if n != "broken.wav")
    assert "skipped" in err and "broken.wav" in err


def test_a_manifest_with_phones_is_scored_and_formats_follow_the_suffix(trained_run, tones, tmp_path, capsys):
    out = tmp_path / "out.tsv"
    code = main(["transcribe", str(trained_run), str(tones["test"]), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert lines[0].startswith("id\taudio\tphones\thangul") and len(lines) == 1 + 8
    assert "PER" in err and "CER" in err and "on 8 utterances" in err
    code, recs, _ = _run(capsys, trained_run, tones["test"])
    assert all(r["ref"] for r in recs) and recs[0]["id"] == "test-0000"
    main(["transcribe", str(trained_run), str(tones["test"]), "--format", "text", "--no-progress"])
    assert capsys.readouterr().out.splitlines()[0].startswith("test-0000: ")


def test_a_missing_input_and_a_too_short_file_are_listed_and_the_rest_is_kept(trained_run, audio_dir, tmp_path,
                                                                              capsys):
    import numpy as np
    import soundfile as sf

    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(20, dtype=np.float32), 16000)
    code, recs, err = _run(capsys, trained_run, audio_dir / "a16k.wav", tmp_path / "nope.wav", short)
    assert code == 1
    assert [("error" in r) for r in recs] == [False, True, True]
    assert "no such file" in recs[1]["error"] and "too short" in recs[2]["error"]


def test_the_adapter_and_the_merged_export_transcribe_alike(trained_run, audio_dir, capsys):
    _, merged, _ = _run(capsys, trained_run / "exports" / "merged", audio_dir / "a16k.wav")
    _, adapter, _ = _run(capsys, trained_run / "exports" / "adapter", audio_dir / "a16k.wav")
    assert adapter[0]["phones"] == merged[0]["phones"]
    assert max(abs(a - b) for a, b in zip(adapter[0]["confidence"], merged[0]["confidence"])) < 1e-3


def test_a_folder_that_is_no_model_is_an_error_naming_it(tmp_path, audio_dir, capsys):
    assert main(["transcribe", str(tmp_path), str(audio_dir / "a16k.wav")]) == 2
    assert str(tmp_path) in capsys.readouterr().err
