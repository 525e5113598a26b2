"""The waveform augmentation chain: what each augmentation does to the audio, that its draws repeat in any
worker and after a resume, and that bad settings are refused naming the key or the folder."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from kidconsole.config import Augment, resolve_config
from kidconsole.config.augment import ORDER
from kidconsole.corpus.synth import Voice, render
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import read_manifest
from kidconsole.phonemes import WORD_SEP, vocab
from trainers.data import BatchStream, make_loader
from trainers.rooms import simulate, simulated_rooms
from trainers.tokenizer import build_feature_extractor
from trainers.wave_augment import Chain, Resources, change_voice, join_groups, prepare, reverberate

SR = 16000


def _voice(f0: float, phones: list[str], seed: int = 0) -> np.ndarray:
    """A steady synthetic voice (no jitter): the synthetic corpus's source-filter rendering."""
    v = Voice(f0=f0, vtl=1.0, tempo=1.3, jitter=0.0, formant_jitter=0.0, hesitation=0.0, filler=0.0)
    x = render(phones, v, np.random.default_rng(seed)).astype(np.float32)
    return x / np.abs(x).max() * 0.5


def _f0(x: np.ndarray) -> float:
    """The median f0 by torchaudio's NCCF estimator (not Praat's, which made the change)."""
    return float(np.median(AF.detect_pitch_frequency(torch.from_numpy(x)[None], SR, freq_low=100,
                                                     freq_high=600)[0].numpy()))


def _formants(x: np.ndarray, order: int = 14) -> np.ndarray:
    """F1-F3 of the middle 200 ms: the angles of the LPC polynomial's narrow roots."""
    from scipy.linalg import solve_toeplitz

    mid = len(x) // 2
    seg = x[mid - 1600:mid + 1600].astype(np.float64)
    seg = np.append(seg[0], seg[1:] - 0.97 * seg[:-1]) * np.hamming(len(seg))
    r = np.correlate(seg, seg, "full")[len(seg) - 1:len(seg) + order]
    roots = np.roots(np.r_[1.0, solve_toeplitz(r[:order], -r[1:order + 1])])
    roots = roots[np.imag(roots) > 0]
    freq, bw = np.angle(roots) * SR / (2 * np.pi), -np.log(np.abs(roots)) * SR / np.pi
    return np.array(sorted(f for f, b in zip(freq, bw) if f > 200 and b < 500)[:3])


def _augment(**waveform) -> Augment:
    return Augment(apply_prob=0.0, speed_prob=0.0, waveform=waveform)


def _snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))


@pytest.mark.parametrize("semitones", [4.0, -3.0])
def test_pitch_shift_moves_f0_by_the_asked_factor_and_keeps_the_duration_and_formants(semitones):
    x = _voice(140, ["A"] * 12)
    y = change_voice(x, SR, semitones=semitones)
    assert len(y) == len(x)
    assert _f0(y) / _f0(x) == pytest.approx(2 ** (semitones / 12), rel=0.03)
    assert _formants(y) == pytest.approx(_formants(x), rel=0.05)


def test_pitch_to_a_childs_median_reaches_it():
    x = _voice(140, ["A", "O", "I"] * 4)
    assert _f0(change_voice(x, SR, median_hz=260.0)) == pytest.approx(260.0, rel=0.05)


@pytest.mark.parametrize("warp", [1.2, 0.85])
def test_vtlp_moves_formants_the_asked_way_and_keeps_f0(warp):
    x = _voice(140, ["A"] * 12)
    y = change_voice(x, SR, warp=warp)
    assert len(y) == len(x)
    ratios = _formants(y) / _formants(x)
    assert ratios == pytest.approx(np.full(3, warp), rel=0.06)  # every formant moves the asked way
    assert _f0(y) / _f0(x) == pytest.approx(1.0, rel=0.03)


def _chain(tmp_path, **waveform) -> Chain:
    aug = _augment(**waveform)
    return Chain(aug, SR, prepare(aug.waveform, SR))


def test_noise_from_a_folder_lands_at_the_asked_snr(tmp_path):
    folder = tmp_path / "noise"
    folder.mkdir()
    rng = np.random.default_rng(1)
    sf.write(folder / "hum.wav", (0.1 * np.sin(np.arange(8000) / 7) + rng.normal(0, 0.05, 8000)).astype(np.float32),
             8000)  # another rate and shorter than the speech: resampled and repeated
    chain = _chain(tmp_path, noise={"prob": 1.0, "folder": str(folder), "snr_db": [5.0, 5.0]})
    x = _voice(140, ["A", "S", "O"] * 3)
    for index in range(5):
        y, applied = chain.apply(x.copy(), (0, 0, 0, index), [])
        assert applied == ["noise"]
        assert _snr(x, y) == pytest.approx(5.0, abs=0.5)


@pytest.mark.parametrize("color", ["white", "pink", "brown", "blue", "violet"])
def test_coloured_noise_lands_at_the_asked_snr(tmp_path, color):
    chain = _chain(tmp_path, colored_noise={"prob": 1.0, "colors": [color], "snr_db": [12.0, 12.0]})
    x = _voice(140, ["A", "S", "O"] * 3)
    y, applied = chain.apply(x.copy(), (0, 0, 0, 3), [])
    assert applied == ["colored_noise"] and _snr(x, y) == pytest.approx(12.0, abs=0.5)


def test_babble_of_other_speakers_lands_at_the_asked_snr(tmp_path, tones):
    rows = list(read_manifest(tones["train"]))
    chain = _chain(tmp_path, babble={"prob": 1.0, "speakers": [3, 3], "snr_db": [15.0, 15.0]})
    x = _voice(140, ["A", "S", "O"] * 3)
    y, applied = chain.apply(x.copy(), (0, 0, 0, 1), rows, speaker=rows[0].speaker)
    assert applied == ["babble"] and _snr(x, y) == pytest.approx(15.0, abs=0.5)


def test_reverberation_keeps_the_length_and_where_each_sound_starts():
    x = np.zeros(SR * 2, dtype=np.float32)
    onsets = [4000, 14000, 25000]  # three bursts of 60 ms: their starts are the labels' alignment
    for at in onsets:
        x[at:at + 960] = 0.5 * np.sin(np.arange(960) * 0.3)
    for ir in simulate(3, (0.3, 0.8), SR, seed=5):
        y = reverberate(x, ir)
        assert len(y) == len(x)
        envelope = np.abs(y)
        for at in onsets:  # each burst starts where it did (within 1 ms), not before
            window = envelope[at - 800:at + 200]
            assert int(np.argmax(window > 0.25)) == pytest.approx(800, abs=16)


def test_simulated_rooms_are_made_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KIDCONSOLE_ROOMS_CACHE", str(tmp_path / "rooms"))
    first = simulated_rooms(2, (0.2, 0.4), SR)
    assert [p.suffix for p in (tmp_path / "rooms").iterdir()] == [".npz"]
    again = simulated_rooms(2, (0.2, 0.4), SR)
    assert again.source == first.source and all(np.array_equal(a, b) for a, b in zip(first.irs, again.irs))


def test_concatenation_joins_phones_in_order_with_the_word_separator(tones):
    rows = list(read_manifest(tones["train"]))[:4]
    aug = _augment(concat={"prob": 1.0, "max_parts": 2, "gap_ms": 100})
    plain = _stream(rows, [[0, 1, 2, 3]])
    joined = _stream(rows, [[0, 1, 2, 3]], chains=[Chain(aug, SR)], batch_seconds=100.0)
    a, b = plain.load(0), joined.load(0)
    assert b.ids == [f"{rows[0].id}+{rows[1].id}", f"{rows[2].id}+{rows[3].id}"]
    v, sep = vocab(), vocab()[WORD_SEP]
    for row, (i, j) in enumerate(((0, 1), (2, 3))):
        want = [v[p] for p in rows[i].phones.split()] + [sep] + [v[p] for p in rows[j].phones.split()]
        assert b.labels[row][b.labels[row] >= 0].tolist() == want
        gap = int(0.1 * SR)
        assert int(b.lengths[row]) == int(a.lengths[i]) + gap + int(a.lengths[j])
    assert b.augmented == {"concat": 4} and sum(map(len, b.ids)) > 0


def test_concatenation_keeps_the_batch_within_its_budget():
    chain = Chain(_augment(concat={"prob": 1.0, "max_parts": 3, "gap_ms": 0}), SR)
    key = lambda i: (0, 0, 0, i)  # noqa: E731
    # four utterances of 2 s: 4 x 2 = 8 s padded; joined in threes, 2 rows x 6 s = 12 s
    assert join_groups([0, 1, 2, 3], [2.0] * 4, lambda i: chain, key, 12.0, 20.0) != [[0], [1], [2], [3]]
    for groups in (join_groups([0, 1, 2, 3], [2.0] * 4, lambda i: chain, key, 8.0, 20.0),
                   join_groups([0, 1, 2, 3], [2.0] * 4, lambda i: chain, key, 12.0, 20.0)):
        longest = max(sum(2.0 for _ in g) for g in groups)
        assert sorted(i for g in groups for i in g) == [0, 1, 2, 3]
        assert len(groups) * longest <= 12.0
    # a join longer than max_seconds never happens
    assert join_groups([0, 1], [2.0, 2.0], lambda i: chain, key, 100.0, 3.0) == [[0], [1]]


def _stream(rows, batches, **kw):
    return BatchStream(rows, batches, feature_extractor=build_feature_extractor(), kernels=(10, 4, 4),
                       strides=(5, 4, 4), sample_rate=SR, max_seconds=kw.pop("max_seconds", 20.0), **kw)


def _everything(tmp_path) -> Augment:
    (tmp_path / "noise").mkdir(exist_ok=True)
    sf.write(tmp_path / "noise" / "n.wav", np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32), SR)
    (tmp_path / "irs").mkdir(exist_ok=True)
    for k, ir in enumerate(simulate(2, (0.2, 0.5), SR, seed=1)):
        sf.write(tmp_path / "irs" / f"room{k}.wav", ir, SR)
    return _augment(concat={"prob": 0.3}, pitch={"prob": 0.5}, vtlp={"prob": 0.5},
                    reverb={"prob": 0.5, "folder": str(tmp_path / "irs")},
                    noise={"prob": 0.5, "folder": str(tmp_path / "noise")}, babble={"prob": 0.5},
                    colored_noise={"prob": 0.5}, gain={"prob": 0.5})


def test_an_utterance_gets_the_same_augmentation_in_any_worker_and_after_a_resume(tmp_path, tones):
    rows = list(read_manifest(tones["train"]))
    aug = _everything(tmp_path)
    chain = Chain(aug.model_copy(update={"speed_prob": 0.5}), SR, prepare(aug.waveform, SR))
    batches = [list(range(i, i + 4)) for i in range(0, 24, 4)]

    def loaded(start: int, workers: int) -> dict[int, tuple]:
        stream = _stream(rows, batches, chains=[chain], batch_seconds=60.0, seed=3, phase=1, epoch=2, start=start)
        return {b.index: (b.ids, b.input_values, b.labels, b.augmented, b.speed_perturbed)
                for b in make_loader(stream, workers)}

    one, two, resumed = loaded(0, 0), loaded(0, 2), loaded(3, 1)
    assert sorted(one) == sorted(two) == list(range(6)) and sorted(resumed) == [3, 4, 5]
    for k in range(6):
        for got in (two, resumed) if k >= 3 else (two,):
            ids, values, labels, augmented, speed = got[k]
            assert ids == one[k][0] and augmented == one[k][3] and speed == one[k][4]
            assert torch.equal(values, one[k][1]) and torch.equal(labels, one[k][2])
    applied = {name for k in one for name in one[k][3]}
    assert applied == set(ORDER)  # every augmentation fired somewhere, and each was counted
    # another epoch draws again
    other = _stream(rows, batches, chains=[chain], batch_seconds=60.0, seed=3, phase=1, epoch=3).load(0)
    assert other.augmented != one[0][3] or not torch.equal(other.input_values, one[0][1])


def _config(waveform: dict, check_paths: bool = True):
    raw = {"model": {"base": "m"}, "data": {"valid_manifest": "v.jsonl"},
           "phases": [{"augment": {"apply_prob": 0.5, "speed_prob": 0.5, "waveform": waveform}}]}
    return resolve_config(raw, "run.yaml", check_paths=check_paths)


@pytest.mark.parametrize("waveform, message", [
    ({"pitch": {"prob": 0.5, "semitones": [3, -3]}},
     "run.yaml: phases.0.augment.waveform.pitch.semitones: [3.0, -3.0] runs backwards"),
    ({"vtlp": {"warp": [0.9, 2.5]}}, "phases.0.augment.waveform.vtlp.warp: [0.9, 2.5] is outside 0.7..1.5"),
    ({"gain": {"prob": 1.5}}, "phases.0.augment.waveform.gain.prob: expected a probability in [0, 1], got 1.5"),
    ({"babble": {"snr_db": [10]}}, "phases.0.augment.waveform.babble.snr_db: expected [lo, hi] dB"),
    ({"noise": {"prob": 0.3}}, "phases.0.augment.waveform.noise.folder: required when prob > 0"),
    ({"concat": {"max_parts": 5}}, "phases.0.augment.waveform.concat.max_parts: expected 2 or 3, got 5"),
    ({"reverb": {"rooms": 0}}, "phases.0.augment.waveform.reverb.rooms: expected an integer from 1 to 1000"),
    ({"pitch": {"semitone": [1, 2]}}, "phases.0.augment.waveform.pitch.semitone: unknown key; nearest: "
                                      "phases.0.augment.waveform.pitch.semitones"),
])
def test_bad_ranges_are_refused_naming_the_key(waveform, message):
    with pytest.raises(KidconsoleError) as e:
        _config(waveform, check_paths=False)
    assert message in str(e.value)


def test_a_missing_noise_folder_is_refused_naming_the_key_and_the_path(tmp_path):
    with pytest.raises(KidconsoleError) as e:
        _config({"noise": {"prob": 0.3, "folder": str(tmp_path / "musan" / "noise")}})
    assert f"phases.0.augment.waveform.noise.folder: {tmp_path}/musan/noise does not exist" in str(e.value)


def test_a_noise_folder_without_audio_is_refused_naming_the_key_and_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    wf = _augment(noise={"prob": 0.3, "folder": str(tmp_path / "empty")}).waveform
    with pytest.raises(KidconsoleError, match=f"phases.1.augment.waveform.noise.folder: no noise recordings "
                                              f".*under {tmp_path}/empty"):
        prepare(wf, SR, "phases.1.augment.waveform")
    assert prepare(_augment().waveform, SR) == Resources()  # a chain without folders reads nothing


@pytest.mark.slow
def test_train_events_count_each_augmentation_at_its_rate(make_config, tmp_path, rd):
    from trainers.train import main as train_main

    aug = _everything(tmp_path)
    waveform = aug.waveform.model_dump()
    waveform["concat"]["prob"] = 0.5
    phase = {"epochs": 3, "lr": 1e-3, "augment": {"apply_prob": 0.5, "speed_prob": 0.5, "waveform": waveform}}
    config = make_config(data__test_manifest=None, data__batch_seconds=16.0, train__eval_every=10 ** 6,
                         train__log_every=10 ** 6, phases=[phase])
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0
    last = rd.events(run, "train")[-1]
    counts, n = last["augmented"], last["samples"]  # n: training utterances, joined ones counted once
    assert set(counts) == set(ORDER)
    joined = counts["concat"]  # utterances joined with others: each join leaves at least one row fewer
    assert 3 * 40 - joined < n < 3 * 40  # the 40 utterances 3 times, some of them joined

    def near(got, share, total):  # within 4 standard deviations of the binomial
        return abs(got - share * total) <= 4 * np.sqrt(share * (1 - share) * total) + 1

    for name in ("pitch", "vtlp", "reverb", "noise", "babble", "colored_noise", "gain"):
        assert near(counts[name], 0.5, n), (name, counts[name], n)
    assert near(last["masked_utterances"], 0.5, n)


def test_the_shipped_child_like_phase_augments_the_adults_only(shipped_config, tones):
    cfg = shipped_config("demo_child_like", [f"phases.1.manifests.0.path={tones['train']}",
                                             f"phases.1.manifests.1.path={tones['valid']}"])
    children, adults = cfg.manifest_augments(cfg.phases[1])
    assert children.waveform.active() == [] and children.speed_prob == 0.0
    assert adults.waveform.active() == ["pitch", "vtlp"]
    assert adults.waveform.pitch.median_hz == [220.0, 320.0] and adults.waveform.vtlp.warp == [1.1, 1.3]


@pytest.mark.slow
def test_a_manifests_own_augmentation_applies_to_its_rows_only(make_config, tmp_path, tones, rd):
    from trainers.train import main as train_main

    n_train, n_valid = (sum(1 for _ in read_manifest(tones[k])) for k in ("train", "valid"))
    phase = {"epochs": 1, "lr": 1e-3, "augment": {"apply_prob": 0.0, "speed_prob": 0.0},
             "manifests": [{"path": str(tones["train"])}, {"path": str(tones["valid"]), "augment": "child_like"}]}
    config = make_config(data__test_manifest=None, train__eval_every=10 ** 6, train__log_every=10 ** 6,
                         phases=[phase])
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0
    last = rd.events(run, "train")[-1]
    assert last["samples"] == n_train + n_valid
    # every adult-manifest row made child-like (a tone row without a voiced frame keeps its voice), no other
    assert 0.8 * n_valid <= last["augmented"]["pitch"] == last["augmented"]["vtlp"] <= n_valid
