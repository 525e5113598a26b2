"""``kidconsole augment preview``: the original and each augmentation as WAV and spectrogram PNG."""

import numpy as np
import pytest
import soundfile as sf

from kidconsole.manifest import read_manifest
from trainers.augment_preview import main as preview_main


def _config(make_config, tmp_path):
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "n.wav", np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    waveform = {"pitch": {"prob": 0.3, "semitones": [2, 4]}, "noise": {"prob": 0.3, "folder": str(tmp_path / "noise")},
                "gain": {"prob": 0.3}, "concat": {"prob": 0.2, "max_parts": 2}}
    return make_config(phases=[{"augment": "weak"}, {"augment": {"apply_prob": 1.0, "speed_prob": 0.5,
                                                                 "waveform": waveform}}])


def test_preview_writes_the_original_and_each_augmentation_with_a_spectrogram(make_config, tmp_path, tones, capsys):
    config = _config(make_config, tmp_path)
    rows = list(read_manifest(tones["train"]))
    out = tmp_path / "preview"
    assert preview_main([str(config), "--utterance", rows[3].id, "--phase", "2", "-o", str(out)]) == 0
    names = ["original", "speed-0.9", "speed-1.1", "concat", "pitch", "noise", "gain", "chain"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{ext}" for n in names for ext in ("wav", "png"))
    original, sr = sf.read(out / "original.wav")
    for name in ("pitch", "noise", "gain"):  # the same length: only the sound changed
        assert len(sf.read(out / f"{name}.wav")[0]) == len(original)
    nxt = sf.info(rows[4].audio).frames
    assert len(sf.read(out / "concat.wav")[0]) == len(original) + int(0.1 * sr) + nxt
    assert all((out / f"{n}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)
    shown = capsys.readouterr().out
    assert "original.wav" in shown and rows[4].phones.split()[0] in shown


def test_preview_of_an_utterance_not_in_the_phase_names_its_manifest(make_config, tmp_path, tones, capsys):
    config = _config(make_config, tmp_path)
    assert preview_main([str(config), "--utterance", "nobody-0001", "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "utterance 'nobody-0001' is not among phase 1's 40 training utterances" in err and str(tones["train"]) in err


def test_preview_of_a_phase_without_augmentation_writes_the_original_only(make_config, tmp_path, tones, capsys):
    config = make_config()
    uid = next(iter(read_manifest(tones["train"]))).id
    assert preview_main([str(config), "--utterance", uid, "-o", str(tmp_path / "p")]) == 0
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["original.png", "original.wav"]
    assert "no speed or waveform augmentation" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["augment", "preview", "--help"]])
def test_the_preview_command_is_on_the_cli(kidconsole, argv):
    done = kidconsole(*argv)
    assert done.returncode == 0 and "--utterance" in done.stdout
