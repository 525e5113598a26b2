"""The key table and the augmentation presets of docs/training.md, generated from the schema
(``python -m kidconsole.config docs/training.md``)."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from kidconsole.config.schema import PRESETS, Augment, RunConfig
from kidconsole.config.walk import _expect, _shape


DOCS_BEGIN = "<!-- config keys: generated from kidconsole/config/schema.py by `python -m kidconsole.config docs/training.md` -->"
DOCS_END = "<!-- end of config keys -->"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value  # as a config writes it: mixed_precision no, not 'no'
    return yaml.safe_dump(value, default_flow_style=True, width=10 ** 6).strip().removesuffix("...").strip()


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        shape, arg = _shape(field.annotation)
        inner = _shape(arg)[1] if shape in ("list", "dict") and _shape(arg)[0] == "model" else None
        if shape == "model":
            out += _rows(arg, key + ".")
            continue
        if field.is_required():
            default = "required"
        elif model is RunConfig and name == "augmentations":
            default = ", ".join(f"`{p}`" for p in PRESETS)
        else:
            default = f"`{_show(field.get_default(call_default_factory=True))}`"
        out.append(f"| `{key}` | {default} | {_expect(field)} | {field.description or ''} |")
        if inner is not None:
            out += _rows(inner, f"{key}.{'<i>' if shape == 'list' else '<name>'}.")
    return out


def docs_tables() -> str:
    """The config key table and the augmentation presets, as docs/training.md holds them."""
    keys = [k for k, f in Augment.model_fields.items() if _shape(f.annotation)[0] != "model"]
    lines = [DOCS_BEGIN, "| key | default | accepts | meaning |", "|---|---|---|---|", *_rows(RunConfig), "",
             "| preset | " + " | ".join(f"`{k}`" for k in keys) + " | `waveform` |", "|---" * (len(keys) + 2) + "|",
             *(f"| `{name}` | " + " | ".join(_show(p[k]) for k in keys) + f" | {_show(p['waveform']) if p.get('waveform') else '-'} |"
               for name, p in PRESETS.items()),
             DOCS_END]
    return "\n".join(lines)


def write_docs(path: str | Path) -> bool:
    """Rewrite the generated tables in ``path`` (between the markers); True when the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = text.index(DOCS_BEGIN), text.index(DOCS_END) + len(DOCS_END)
    new = text[:start] + docs_tables() + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


