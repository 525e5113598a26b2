"""Walking the schema: the shape of an annotation, the field at an error's location, every dotted key."""

import reprlib
import types
import typing
from typing import Annotated, Any, Sequence, Union

from pydantic import BaseModel, Tag
from pydantic.fields import FieldInfo

from kidconsole.config.kinds import Expect
from kidconsole.config.schema import RunConfig


def _shape(ann: Any) -> tuple[str, Any]:
    """("model", cls) | ("list", item) | ("dict", value) | ("union", members) | ("leaf", ann)."""
    while typing.get_origin(ann) is Annotated:
        ann = typing.get_args(ann)[0]
    origin = typing.get_origin(ann)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(ann) if a is not type(None)]
        return _shape(members[0]) if len(members) == 1 else ("union", members)
    if origin is list:
        return "list", typing.get_args(ann)[0]
    if origin is dict:
        return "dict", typing.get_args(ann)[1]
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "model", ann
    return "leaf", ann


def _tag(ann: Any) -> str | None:
    return next((m.tag for m in typing.get_args(ann)[1:] if isinstance(m, Tag)), None) \
        if typing.get_origin(ann) is Annotated else None


def _walk(loc: Sequence[Any]) -> tuple[list[str], FieldInfo | None, type[BaseModel] | None, Any]:
    """An error location -> (dotted key parts without union tags, the field there, the model holding it,
    the type at the location: the field's, or an item's of a list or mapping)."""
    ann: Any = RunConfig
    parts: list[str] = []
    field: FieldInfo | None = None
    holder: type[BaseModel] | None = None
    for part in loc:
        shape, arg = _shape(ann)
        if shape == "union":
            member = next((m for m in arg if _tag(m) == part), None)
            if member is not None:
                ann = member
                continue
        parts.append(str(part))
        if shape == "model":
            holder, field = arg, arg.model_fields.get(part)
            ann = field.annotation if field is not None else None
        elif shape in ("list", "dict"):
            ann = arg
        else:
            ann = None
    return parts, field, holder, ann


def _expect(field: FieldInfo | None) -> str:
    for m in (field.metadata if field is not None else ()):
        if isinstance(m, Expect):
            return m.text
    return "a mapping" if field is not None and _shape(field.annotation)[0] == "model" else "a valid value"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 50, 50


def _short(value: Any) -> str:
    """A value in an error, bounded: reprlib stops at a few items and levels (a plain repr of a
    huge or deeply shared structure takes minutes)."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of ``model``, a phase's as ``phases.<i>.KEY``, a preset's as ``augmentations.<name>.KEY``."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        out.append(key)
        shape, arg = _shape(field.annotation)
        if shape == "model":
            out += _leaf_keys(arg, key + ".")
        elif shape in ("list", "dict") and _shape(arg)[0] == "model":
            out += _leaf_keys(_shape(arg)[1], f"{key}.{'<i>' if shape == 'list' else '<name>'}.")
    return out


