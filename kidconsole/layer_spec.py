"""Layer specs: ``"8-23"``, ``"0-3,6"``, ``8`` or ``[8, 9]`` -> sorted transformer layer indices.

One syntax for every key that names layers (``model.freeze_layers``, ``lora.layers``) and for the
``layers`` term of a ``train.lr_groups`` pattern (param_groups.py). Light: no pydantic, no torch.
"""

from __future__ import annotations

import re
from typing import Any

_SPEC = re.compile(r"\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*")


def parse_layer_spec(spec: Any) -> list[int] | None:
    """Sorted layer indices (None stays None); ValueError says what is wrong with ``spec``."""
    if spec is None:
        return None
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [spec]
    if isinstance(spec, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in spec):
        return sorted(set(spec))
    if isinstance(spec, str) and _SPEC.fullmatch(spec):
        out: set[int] = set()
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            lo_i, hi_i = int(lo), int(hi or lo)
            if hi_i < lo_i:
                raise ValueError(f"range {part.strip()!r} runs backwards")
            out.update(range(lo_i, hi_i + 1))
        return sorted(out)
    shown = repr(spec)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise ValueError(f"expected a layer range like '8-23' or a list of integers, got {shown}")
