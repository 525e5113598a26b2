"""``--set key=value``: one override applied to the raw config, each step of the key checked against the schema."""

from typing import Any

import yaml
from pydantic.fields import FieldInfo

from kidconsole.config.explain import _unknown
from kidconsole.config.kinds import _err
from kidconsole.config.schema import RunConfig
from kidconsole.config.walk import _expect, _shape, _short
from kidconsole.config.yamlfile import _yaml
from kidconsole.errors import KidconsoleError


def _set_dotted(raw: dict, assignment: str, where: str) -> None:
    """Apply one override to the raw mapping, checking each step of the key against the schema."""
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise KidconsoleError(f"{where}: override {assignment!r} is not key=value")
    try:
        parsed = _yaml(value) if value.strip() else None
    except yaml.YAMLError as e:
        raise _err(where, key, f"cannot parse value {value!r}: {e}") from e
    parts = key.split(".")
    node: Any = raw
    ann: Any = RunConfig
    field: FieldInfo | None = None
    for i, part in enumerate(parts):
        above, here = ".".join(parts[:i]), ".".join(parts[: i + 1])
        shape, arg = _shape(ann)
        if shape == "union":  # a choice of a name or a mapping (a phase's augment): keys mean the mapping
            shape, arg = next(((s, a) for s, a in map(_shape, arg) if s == "model"), ("leaf", ann))
        if shape == "leaf":
            raise _err(where, here, f"{above} is a single value ({_expect(field)}); it has no key {part!r}")
        if shape == "list":
            if not isinstance(node, list):
                raise _err(where, here, f"{above} is not a list in this config: set it whole ({above}=[...])")
            if not part.isdigit() or int(part) >= len(node):
                raise _err(where, here, f"{part!r} is not an index of {above} (a list of {len(node)})")
            slot: Any = int(part)
        else:
            if not isinstance(node, dict):
                raise _err(where, here, f"{above} is {_short(node)}, not a mapping")
            if shape == "model" and part not in arg.model_fields:
                raise _err(where, here, _unknown(parts[: i + 1], arg))
            slot = part
        if shape == "model":
            field = arg.model_fields[part]
            ann = field.annotation
        else:
            ann = arg
        if i == len(parts) - 1:
            node[slot] = parsed
        else:
            nxt = node[slot] if isinstance(node, list) else node.get(slot)
            if nxt is None:
                nxt = node[slot] = {}
            node = nxt

