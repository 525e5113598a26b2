import numpy as np
import pytest

from kidconsole.corpus.snr import parse_snr, wada_snr


def test_parse_snr_forms():
    assert [parse_snr(v) for v in ("25dB", "+30", "N/A", None, 7, "12.5 dB", "n/a", "abc", True)] == \
        [25.0, 30.0, None, None, 7.0, 12.5, None, None, None]


def _speechlike(n, rng):
    # amplitudes of speech follow a Gamma(0.4) law: the estimator's own model
    x = rng.gamma(0.4, 1.0, n) * rng.choice((-1.0, 1.0), n)
    return x / np.sqrt(np.mean(x**2))


@pytest.mark.parametrize("snr", [0, 10, 20, 35])
def test_wada_recovers_the_snr_of_speechlike_signal(snr):
    rng = np.random.default_rng(snr)
    x = _speechlike(48000, rng)
    noisy = x + rng.standard_normal(x.size) * 10 ** (-snr / 20)
    assert abs(wada_snr(noisy) - snr) < 2.0


def test_wada_orders_synthetic_utterances_by_noise():
    from kidconsole.corpus.synth import Voice, add_noise, render

    rng = np.random.default_rng(0)
    voice = Voice(f0=120, vtl=1.0, tempo=1.0, jitter=0.0, formant_jitter=0.0, hesitation=0, filler=0)
    x = render("A N | S A R A M | Ph O D O".split(), voice, rng)
    estimates = [wada_snr(add_noise(x, snr, np.random.default_rng(1))) for snr in (5, 15, 30)]
    assert estimates[0] < estimates[1] < estimates[2]


def test_wada_gives_none_for_silence_and_tiny_input():
    assert wada_snr(np.zeros(16000)) is None
    assert wada_snr(np.ones(10)) is None
