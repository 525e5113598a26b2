"""Validation errors explained in the user's words: the file, the dotted key and the reason, the nearest
valid keys for an unknown one."""

import difflib

from pydantic import BaseModel, ValidationError

from kidconsole.config.schema import RunConfig
from kidconsole.config.walk import _expect, _leaf_keys, _shape, _short, _walk
from kidconsole.errors import KidconsoleError


def _unknown(parts: list[str], holder: type[BaseModel]) -> str:
    """'unknown key' with the nearest valid keys: of its own section, then of the whole schema."""
    key, prefix = ".".join(parts), ".".join(parts[:-1])
    here = [f"{prefix}.{k}" if prefix else k for k in holder.model_fields]
    which = parts[1] if len(parts) > 2 else None  # the phase index or preset name the key is under
    everywhere = [k.replace("<i>", which if parts[0] == "phases" and which else "0")
                  .replace("<name>", which if parts[0] == "augmentations" and which else "none")
                  for k in _leaf_keys(RunConfig)]
    near = difflib.get_close_matches(key, here, n=3, cutoff=0.6)
    near += [k for k in difflib.get_close_matches(key, everywhere, n=3, cutoff=0.75) if k not in near]
    known = ", ".join(holder.model_fields)
    if near:
        return f"unknown key; nearest: {', '.join(near[:3])} (known here: {known})"
    return f"unknown key (known here: {known})"


def _reason(err: dict) -> tuple[str, str]:
    """One pydantic error -> (dotted key, reason in the user's words)."""
    parts, field, holder, at = _walk(err["loc"])
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "kidconsole":
        return ".".join(parts + ([ctx["key"]] if ctx.get("key") else [])), ctx["reason"]
    key = ".".join(parts)
    if kind == "missing":
        return key, f"required: {_expect(field)}"
    if kind in ("extra_forbidden", "invalid_key") and holder is not None:
        return key, _unknown(parts, holder)
    got = _short(err.get("input"))
    if _shape(at)[0] == "model":  # a section, a phase, a preset
        return key, f"expected a mapping, got {got}"
    if kind == "finite_number":
        return key, f"{got} is not a finite number (expected {_expect(field)})"
    if kind == "literal_error" and isinstance(err.get("input"), bool):
        got += " (YAML reads an unquoted yes/no/on/off as a boolean)"
    return key, f"expected {_expect(field)}, got {got}"


def _explained(e: ValidationError, where: str) -> KidconsoleError:
    lines: dict[str, str] = {}
    for err in e.errors(include_url=False):
        key, reason = _reason(err)
        lines.setdefault(key, f"{where}: {key}: {reason}")
    shown = list(lines.values())
    more = f"\n(and {len(shown) - 10} more)" if len(shown) > 10 else ""
    return KidconsoleError("\n".join(shown[:10]) + more)

