"""Which utterances the index keeps, and why it rejects the others.

Every rejection has a short reason key, counted per key and listed with its
file in the index's side report. Reasons, in the order they are checked:

| reason | meaning |
|---|---|
| ``unreadable_label`` | the label file could not be read (I/O, bad zip member) |
| ``bad_json`` | not UTF-8 JSON (truncated, corrupt) |
| ``bad_schema`` | JSON, but neither AI Hub label schema |
| ``bad_value`` | a number field holds something that is not a number |
| ``no_speaker`` | no ``Basic.NumberOfSpeaker``: the speaker is unknown |
| ``missing_audio`` | no WAV for the label |
| ``bad_audio`` | the WAV's header cannot be read (corrupt file) |
| ``quality`` | ``Other.QualityStatus`` given and not accepted (labels without it pass) |
| ``sample_rate`` | not the required sample rate |
| ``channels`` | not mono |
| ``too_short`` / ``too_long`` | duration outside the bounds |
| ``empty_text`` | no transcript, or nothing left after markup is removed |
| ``unmappable_text`` | the G2P could not turn the transcript into phones |
| ``duplicate_id`` | a second label for an utterance id already indexed |
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

REASONS = (
    "unreadable_label", "bad_json", "bad_schema", "bad_value", "no_speaker",
    "missing_audio", "bad_audio", "quality", "sample_rate", "channels",
    "too_short", "too_long", "empty_text", "unmappable_text", "duplicate_id",
)


@dataclass(frozen=True)
class FilterConfig:
    quality: tuple[str, ...] = ("Good",)   # accepted QualityStatus values (case-insensitive); () accepts all
    sample_rate: int | None = 16000        # None accepts any rate
    mono: bool = True
    min_duration: float = 0.3              # seconds: public tools drop speech of 0.3 s or less
    max_duration: float = 30.0


@dataclass
class Reject:
    reason: str
    label: str                 # label location (path or "zip::member")
    detail: str = ""
    audio: str | None = None

    def to_dict(self) -> dict:
        d = {"reason": self.reason, "label": self.label, "detail": self.detail}
        if self.audio:
            d["audio"] = self.audio
        return d


@dataclass
class Tally:
    """Counts of kept rows and of rejects per reason."""
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)

    def add(self, other: "Tally") -> None:
        self.kept += other.kept
        self.rejected.update(other.rejected)


def check_row(*, quality: str | None, sample_rate: int | None, channels: int | None,
              duration: float | None, cfg: FilterConfig) -> tuple[str, str] | None:
    """(reason, detail) when the row's audio facts fail a filter, else None."""
    if cfg.quality and quality is not None and quality.lower() not in {q.lower() for q in cfg.quality}:
        return "quality", f"QualityStatus {quality!r}"
    if cfg.sample_rate is not None and sample_rate != cfg.sample_rate:
        return "sample_rate", f"{sample_rate} Hz, need {cfg.sample_rate}"
    if cfg.mono and channels not in (None, 1):
        return "channels", f"{channels} channels, need mono"
    if duration is not None and duration <= cfg.min_duration:
        return "too_short", f"{duration:.3f} s <= {cfg.min_duration} s"
    if duration is not None and duration > cfg.max_duration:
        return "too_long", f"{duration:.3f} s > {cfg.max_duration} s"
    return None
