"""The waveform augmentation chain's config schema: ``augment.waveform`` of a phase or a preset.

Each augmentation has its own probability (drawn per utterance) and ranges; every range is ``[lo, hi]``,
drawn uniformly, checked for order and for the bounds published work uses. They run in the data workers,
in the order of ``ORDER`` (docs/training.md, Waveform augmentation); ``trainers/wave_augment.py`` applies
them. ``schema.Augment`` holds a ``Waveform`` as its ``waveform``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from annotated_types import Ge, Le, MinLen
from pydantic import AfterValidator, Field, model_validator

from kidconsole.config.kinds import Count, Prob, _kind, _path, _rule
from kidconsole.config.section import Section

# the order the chain applies them in (speed, the reference's, comes first: on each part of a join)
ORDER = ("concat", "pitch", "vtlp", "reverb", "noise", "babble", "colored_noise", "gain")
COLORS = ("white", "pink", "brown", "blue", "violet")


def _range(lo: float, hi: float, unit: str = "", *, tp: Any = float, optional: bool = False) -> Any:
    """A ``[lo, hi]`` pair inside [``lo``, ``hi``] (``unit`` for the messages), the first not above the second;
    ``optional``: null too."""
    what = f"[lo, hi]{unit} with lo <= hi, each from {lo:g} to {hi:g}"

    def check(v: list | None) -> list | None:
        if v is None:
            return v
        if len(v) != 2:
            raise _rule(f"expected {what}, got a list of {len(v)}")
        if not all(lo <= x <= hi for x in v):
            raise _rule(f"{v} is outside {lo:g}..{hi:g}{unit}")
        if v[0] > v[1]:
            raise _rule(f"{v} runs backwards: lo must not be above hi")
        return [tp(x) for x in v]

    kind = Optional[list[tp]] if optional else list[tp]
    return _kind(kind, f"null or {what}" if optional else what, AfterValidator(check))


Semitones = _range(-12, 12, " semitones")
Warp = _range(0.7, 1.5)
Hertz = _range(60, 600, " Hz", optional=True)
Decibels = _range(-20, 80, " dB")
GainDb = _range(-40, 40, " dB")
Speakers = _range(1, 20, " speakers", tp=int)
Rt60 = _range(0.05, 3.0, " s")
Folder = _kind(Optional[str], "a folder path or null", AfterValidator(_path))
Colors = _kind(list[Literal[COLORS]], "a non-empty list of " + ", ".join(COLORS), MinLen(1))


class Pitch(Section):
    prob: Prob = Field(0.0, description="share of utterances whose f0 is moved, duration and formants kept (Praat's "
                       "PSOLA through parselmouth)")
    semitones: Semitones = Field([-3.0, 3.0], description="the shift, drawn uniformly")
    median_hz: Hertz = Field(None, description="instead of `semitones`: the utterance's f0 median is taken to a "
                             "value drawn from this range (children aged 5-10: about 220-320 Hz)")


class Vtlp(Section):
    prob: Prob = Field(0.0, description="share of utterances whose formants are scaled, f0 and duration kept "
                       "(vocal tract length perturbation by Praat's Change gender)")
    warp: Warp = Field([0.9, 1.1], description="the formant scale, drawn uniformly; above 1 a shorter vocal tract "
                       "(a child's is 1.1-1.3 times an adult woman's formants, up to 1.5 times a man's)")


class Noise(Section):
    prob: Prob = Field(0.0, description="share of utterances mixed with a recording from `folder`")
    folder: Folder = Field(None, description="a folder of noise recordings (WAV, FLAC, OGG; searched recursively; "
                           "MUSAN's noise/ for example); required when `prob` > 0")
    snr_db: Decibels = Field([0.0, 15.0], description="speech power over noise power, drawn uniformly")

    @model_validator(mode="after")
    def _needs_a_folder(self) -> "Noise":
        if self.prob > 0 and self.folder is None:
            raise _rule("required when prob > 0: a folder of noise recordings", "folder")
        return self


class Babble(Section):
    prob: Prob = Field(0.0, description="share of utterances mixed with babble: other training utterances of other "
                       "speakers, summed (a classroom)")
    speakers: Speakers = Field([3, 7], description="utterances summed into the babble, drawn uniformly")
    snr_db: Decibels = Field([13.0, 20.0], description="speech power over babble power, drawn uniformly")


class ColoredNoise(Section):
    prob: Prob = Field(0.0, description="share of utterances mixed with stationary coloured Gaussian noise")
    colors: Colors = Field(["white", "pink", "brown"], description="the colours drawn from (power slopes of 0, -3, "
                           "-6, +3, +6 dB an octave)")
    snr_db: Decibels = Field([10.0, 30.0], description="speech power over noise power, drawn uniformly")


class Reverb(Section):
    prob: Prob = Field(0.0, description="share of utterances convolved with a room impulse response; the length "
                       "and the labels' alignment are kept (the direct path stays where the sound was)")
    folder: Folder = Field(None, description="a folder of impulse responses (WAV, FLAC); null: `rooms` simulated "
                           "rooms (pyroomacoustics), made once and cached")
    rooms: _kind(int, "an integer from 1 to 1000", Ge(1), Le(1000)) = Field(
        64, description="simulated rooms (shoebox, 3x3x2.5 to 10x8x4 m, RT60 from `rt60`)")
    rt60: Rt60 = Field([0.2, 0.8], description="the simulated rooms' reverberation time (s), drawn uniformly")


class Gain(Section):
    prob: Prob = Field(0.0, description="share of utterances whose level changes, clipped at full scale as a "
                       "recorder clips (the loader's normalisation undoes the rest)")
    db: GainDb = Field([-6.0, 6.0], description="the change in dB, drawn uniformly")


class Concat(Section):
    prob: Prob = Field(0.0, description="share of utterances joined with the next one or two of their batch into one "
                       "(phones joined with the word separator `|`), when the batch stays within "
                       "`data.batch_seconds` and the join within `data.max_seconds`")
    max_parts: _kind(int, "2 or 3", Ge(2), Le(3)) = Field(3, description="the most utterances in one join (the "
                                                                          "count is drawn from 2 to this)")
    gap_ms: Count = Field(100, description="silence between the joined utterances (ms)")


class Waveform(Section):
    """Waveform augmentations in the data workers, each drawn per (seed, phase, epoch, utterance)."""
    concat: Concat = Field(default_factory=dict, description="concatenation of short utterances")
    pitch: Pitch = Field(default_factory=dict, description="pitch shift without a tempo change")
    vtlp: Vtlp = Field(default_factory=dict, description="vocal tract length perturbation (formant warping)")
    reverb: Reverb = Field(default_factory=dict, description="reverberation")
    noise: Noise = Field(default_factory=dict, description="additive noise from recordings")
    babble: Babble = Field(default_factory=dict, description="additive babble of other training utterances")
    colored_noise: ColoredNoise = Field(default_factory=dict, description="additive stationary coloured noise")
    gain: Gain = Field(default_factory=dict, description="level change")

    def active(self) -> list[str]:
        """The augmentations this chain may apply (probability above 0), in ``ORDER``."""
        return [name for name in ORDER if getattr(self, name).prob > 0]


assert tuple(Waveform.model_fields) == ORDER

# the chain of the built-in preset ``child_like``: adult voices toward children's (Lee, Potamianos and
# Narayanan 1999: f0 of 5-10 year olds about 220-320 Hz, formants 10-30% above adult women's)
CHILD_LIKE = {"pitch": {"prob": 1.0, "median_hz": [220.0, 320.0]}, "vtlp": {"prob": 1.0, "warp": [1.1, 1.3]}}


def ranges_text(spec: dict) -> str:
    """An augmentation's ranges as `name lo..hi`, without its probability (and `semitones` when `median_hz` is set)."""
    parts = []
    for k, v in spec.items():
        if k == "prob" or v is None or (k == "semitones" and spec.get("median_hz") is not None):
            continue
        parts.append(f"{k} {v[0]:g}..{v[1]:g}" if isinstance(v, list) and len(v) == 2
                     and all(isinstance(x, (int, float)) for x in v) else f"{k} {v}")
    return ", ".join(parts)
