"""One AI Hub label JSON -> the manifest fields it carries.

Two schema variants (``shared/aihub-child-speech.md``):
- English keys: ``Basic``, ``Speaker``, ``Environment``, ``File``, ``Wav``,
  ``Transcription``, ``Other``;
- Korean keys: ``기본정보``, ``화자정보``, ``환경정보``, ``파일정보``, ``음성정보``,
  ``전사정보`` (transcript in ``TransLabelText`` / ``OrgLabelText``), ``기타정보``.
Inside the sections the keys are the same English names in both.

The speaker identity is ``Basic.NumberOfSpeaker`` (hashed), never the
``SpeakerName``: different children share initials. Numbers may come as strings.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from kidconsole.corpus.snr import parse_snr
from kidconsole.errors import KidconsoleError

# section name in the English variant -> in the Korean variant
SECTIONS = {
    "Basic": "기본정보",
    "Speaker": "화자정보",
    "Environment": "환경정보",
    "File": "파일정보",
    "Wav": "음성정보",
    "Transcription": "전사정보",
    "Other": "기타정보",
    "Miscellaneous_Info": "부가정보",
}
# transcript keys, most preferred first: what was said, then the prompt
TEXT_KEYS = ("LabelText", "TransLabelText", "RefinedLabelText", "OrgLabelText")
_GENDER = {"m": "M", "male": "M", "남": "M", "남성": "M", "남자": "M",
           "f": "F", "female": "F", "여": "F", "여성": "F", "여자": "F"}
_NA = {"", "n/a", "na", "none", "null", "-", "unknown", "notprovided", "notprovidied"}
_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[~\-–]\s*(\d+(?:\.\d+)?)\s*$")
_NUM = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(?:세|살|years?|y|s|sec|hz|ch)?\s*$", re.IGNORECASE)


class LabelError(KidconsoleError):
    """A label file that cannot give a manifest row; ``reason`` is a short counted key."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Label:
    """The manifest fields one label file gives (audio location and phones come later)."""
    file_name: str | None          # File.FileName: the WAV's name
    speaker_number: str | None     # Basic.NumberOfSpeaker, as written
    text: str
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    age: float | None = None
    age_range: list[float] | None = None
    gender: str | None = None
    snr: float | None = None
    quality: str | None = None
    schema: str = "en"             # "en" or "ko"
    extra: dict = field(default_factory=dict)


def speaker_id(number: str, scope: str = "") -> str:
    """A stable, opaque speaker id from ``Basic.NumberOfSpeaker`` (and an optional scope).

    The scope (empty by default) salts the hash when serials of different
    corpora indexed together could collide.
    """
    digest = hashlib.blake2b(f"{scope}\0{number}".encode(), digest_size=8).hexdigest()
    return f"spk-{digest}"


def speaker_number(value) -> str | None:
    """``Basic.NumberOfSpeaker`` as a canonical string: ``12``, ``"12"`` and ``"0012"`` are one speaker."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text.lower() in _NA:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(int(text)) if text.isdigit() else text


def parse_number(value, key: str, where: str) -> float | None:
    """A number written as a number or a string (``"16000"``, ``" 3.5 "``, ``"7세"``); None when N/A."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise LabelError("bad_value", f"{where}: {key} is {value!r}, expected a number")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if text.lower() in _NA:
        return None
    m = _NUM.match(text.replace(",", ""))
    if not m:
        raise LabelError("bad_value", f"{where}: {key} is {value!r}, expected a number")
    return float(m.group(1))


def parse_age(value, where: str) -> tuple[float | None, list[float] | None]:
    """``7`` / ``"7"`` -> (7.0, None); ``"10~19"`` -> (None, [10.0, 19.0]); N/A -> (None, None)."""
    if isinstance(value, str):
        m = _RANGE.match(value)
        if m:
            lo, hi = sorted((float(m.group(1)), float(m.group(2))))
            return None, [lo, hi]
    return parse_number(value, "Speaker.Age", where), None


def parse_gender(value) -> str | None:
    if value is None:
        return None
    return _GENDER.get(str(value).strip().lower())


def _section(data: dict, name: str, schema: str) -> dict:
    sec = data.get(name if schema == "en" else SECTIONS[name])
    return sec if isinstance(sec, dict) else {}


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text if text.lower() not in _NA else None


def parse_label(data, where: str) -> Label:
    """The fields of one parsed label JSON; :class:`LabelError` when it cannot make a row."""
    if not isinstance(data, dict):
        raise LabelError("bad_schema", f"{where}: label is not a JSON object")
    if any(k in data for k in ("Basic", "Speaker", "Transcription", "File", "Wav")):
        schema = "en"
    elif any(k in data for k in SECTIONS.values()):
        schema = "ko"
    else:
        raise LabelError("bad_schema", f"{where}: neither AI Hub label schema "
                         f"(top-level keys: {', '.join(list(data)[:6]) or 'none'})")
    basic = _section(data, "Basic", schema)
    spk = _section(data, "Speaker", schema)
    fil = _section(data, "File", schema)
    wav = _section(data, "Wav", schema)
    trn = _section(data, "Transcription", schema)
    other = _section(data, "Other", schema)

    text = None
    for key in TEXT_KEYS:
        text = _text(trn.get(key))
        if text:
            break
    extra = {}
    org = _text(trn.get("OrgLabelText"))
    if org and org != text:
        extra["prompt"] = org

    number = speaker_number(basic.get("NumberOfSpeaker"))
    age, age_range = parse_age(spk.get("Age"), where)
    sr = parse_number(wav.get("SamplingRate"), "Wav.SamplingRate", where)
    ch = parse_number(wav.get("NumberOfChannel"), "Wav.NumberOfChannel", where)
    snr_raw = wav.get("SignalToNoiseRatio")
    snr = parse_snr(snr_raw)
    if snr is None and snr_raw is not None and str(snr_raw).strip().lower() not in _NA:
        extra["snr_raw"] = str(snr_raw)  # kept so an odd spelling can be found later
    quality = other.get("QualityStatus")
    return Label(
        file_name=_text(fil.get("FileName")),
        speaker_number=number,
        text=text or "",
        duration=parse_number(fil.get("FileLength"), "File.FileLength", where),
        sample_rate=int(sr) if sr is not None else None,
        channels=int(ch) if ch is not None else None,
        age=age,
        age_range=age_range,
        gender=parse_gender(spk.get("Gender")),
        snr=snr,
        quality=str(quality).strip() if quality is not None else None,
        schema=schema,
        extra=extra,
    )


def load_label(raw: bytes, where: str) -> Label:
    """Decode (UTF-8, with or without BOM) and parse one label file's bytes."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise LabelError("bad_json", f"{where}: not UTF-8 ({e.reason})") from e
    except json.JSONDecodeError as e:
        raise LabelError("bad_json", f"{where}: not valid JSON (line {e.lineno}: {e.msg})") from e
    return parse_label(data, where)
