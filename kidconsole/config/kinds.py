"""Value kinds of the config schema: a type, its constraint, and what it expects in words (``Expect``).

Each kind is an ``Annotated`` type; ``Expect`` is what error reasons and the docs table say it accepts.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import AfterValidator, BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from kidconsole.errors import KidconsoleError
from kidconsole.hub import looks_like_hub_id
from kidconsole.layer_spec import parse_layer_spec


def _err(where: str, key: str, reason: str) -> KidconsoleError:
    return KidconsoleError(f"{where}: {key}: {reason}")


@dataclass(frozen=True)
class Expect:
    """What a valid value is, in the user's words: error reasons and the docs table say it."""
    text: str


def _kind(tp: Any, expect: str, *meta: Any) -> Any:
    return Annotated[(tp, *meta, Expect(expect))]


def _rule(reason: str, key: str = "") -> PydanticCustomError:
    """A failed check of ours; ``key`` names the field below the failing model (dotted)."""
    return PydanticCustomError("kidconsole", "{reason}", {"reason": reason, "key": key})


# YAML 1.1 reads no/off/false (yes/on/true) as booleans: a choice such as mixed_precision "no"
# must accept the word as the docs write it, unquoted
_YAML11_WORDS = {False: ("no", "off", "false"), True: ("yes", "on", "true")}


def _choice(*values: str) -> Any:
    def as_written(v: Any) -> Any:
        if isinstance(v, bool):
            return next((w for w in _YAML11_WORDS[v] if w in values), v)
        return v

    return _kind(Literal[values], "one of " + ", ".join(values), BeforeValidator(as_written))


def _name(v: Any) -> Any:
    return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def parse_layers(spec: Any, where: str = "", key: str = "") -> list[int] | None:
    """``"8-23"``, ``"0-3,6"``, ``[8, 9]`` or ``None`` -> sorted layer indices (None stays None)."""
    try:
        return parse_layer_spec(spec)
    except ValueError as e:
        raise _err(where, key, str(e)) from None


def _layers(spec: Any) -> Any:
    try:
        return parse_layer_spec(spec)
    except ValueError as e:
        raise _rule(str(e)) from None


def _base_dir(info: ValidationInfo) -> Path:
    return Path((info.context or {}).get("base_dir", "."))


def _path(value: str | None, info: ValidationInfo) -> str | None:
    """Absolute, resolved against the config's folder; must exist unless the context says not to check."""
    if value is None:
        return None
    if not value.strip():
        raise _rule("expected a path, got ''")
    p = Path(value).expanduser()
    p = p if p.is_absolute() else _base_dir(info) / p
    if (info.context or {}).get("check_paths", True) and not p.exists():
        raise _rule(f"{p} does not exist")
    return str(p.resolve())


def _model_base(value: str, info: ValidationInfo) -> str:
    """A local folder (made absolute, must exist) unless it looks like a hub id and no such folder is here."""
    if (_base_dir(info) / Path(value).expanduser()).exists() or not looks_like_hub_id(value):
        return _path(value, info)  # type: ignore[return-value]
    return value


PosInt = _kind(int, "a positive integer", Gt(0))
Count = _kind(int, "an integer >= 0", Ge(0))
OptPosInt = _kind(Optional[Annotated[int, Gt(0)]], "a positive integer or null")
Positive = _kind(float, "a positive number", Gt(0))
Seconds = _kind(float, "a positive number of seconds", Gt(0))
NonNegative = _kind(float, "a number >= 0", Ge(0))
Share = _kind(float, "a share between 0 and 1", Ge(0), Le(1))
Prob = _kind(float, "a probability in [0, 1]", Ge(0), Le(1))
BelowOne = _kind(float, "a number in [0, 1)", Ge(0), Lt(1))
Flag = _kind(bool, "true or false")
Name = _kind(Optional[str], "a name or null", BeforeValidator(_name))
Layers = _kind(Optional[list[Annotated[int, Ge(0)]]], "a layer range like '8-23', a list of integers, or null",
               BeforeValidator(_layers))
Manifest = _kind(Optional[str], "a manifest path or null", AfterValidator(_path))
RequiredManifest = _kind(str, "a manifest path", AfterValidator(_path))
ModelBase = _kind(str, "a local model folder or a hub id (owner/name)", AfterValidator(_model_base))
Modules = _kind(list[Annotated[str, MinLen(1)]], "a non-empty list of module names", MinLen(1))

