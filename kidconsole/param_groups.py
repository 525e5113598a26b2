"""Parameter patterns of ``train.lr_groups``: which of a model's parameters a group claims.

A pattern is one or more terms, all of which a parameter must match:

- ``layers 8-15`` (any layer spec: ``8-15``, ``0-3,6``, ``12``): the transformer layers ``encoder.layers.N``;
- ``lora``: the LoRA factors (``lora_A``, ``lora_B``);
- ``head``: the CTC head (``lm_head``);
- ``feature_encoder``: the CNN feature encoder;
- ``names GLOB``: parameter names matching a shell pattern (``*attention.q_proj*``).

So ``lora layers 16-23`` is the adapters of the top layers, ``layers 8-15`` every trainable weight of those
layers. Light (no torch): the config validates patterns and the overlaps it can tell without a model; the
trainer matches them against the real parameter names (trainers/optim.py).
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass

from kidconsole.layer_spec import parse_layer_spec

TERMS = ("layers", "lora", "head", "feature_encoder", "names")
_LAYER = re.compile(r"(?:^|\.)encoder\.layers\.(\d+)\.")
_LORA = re.compile(r"\.lora_[AB]\.")
HEAD_PREFIXES = ("lm_head.", "base_model.model.lm_head.")


def _layer_set(spec: str) -> frozenset[int]:
    return frozenset(parse_layer_spec(spec) or ())


@dataclass(frozen=True)
class Pattern:
    text: str
    layers: frozenset[int] | None = None
    lora: bool = False
    head: bool = False
    feature_encoder: bool = False
    names: str | None = None

    def matches(self, name: str) -> bool:
        """Whether parameter ``name`` (as ``model.named_parameters()`` gives it) is claimed."""
        if self.layers is not None:
            m = _LAYER.search(name)
            if m is None or int(m.group(1)) not in self.layers:
                return False
        if self.lora and not _LORA.search(name):
            return False
        if self.head and not (name.startswith(HEAD_PREFIXES) or ".lm_head." in name):
            return False
        if self.feature_encoder and ".feature_extractor." not in f".{name}":
            return False
        return self.names is None or fnmatch.fnmatchcase(name, self.names)

    def cells(self, n_layers: int) -> set[tuple] | None:
        """The abstract parameter kinds it claims (None: it names parameters by glob, only a model tells):
        ("head",), ("feature_encoder",), ("other",), ("layer", i, lora?) for i < ``n_layers``."""
        if self.names is not None:
            return None
        universe = [("head",), ("feature_encoder",), ("other",)] + \
            [("layer", i, lo) for i, lo in itertools.product(range(n_layers), (True, False))]
        out = set()
        for c in universe:
            if self.head and c[0] != "head" or self.feature_encoder and c[0] != "feature_encoder":
                continue
            if self.layers is not None and not (c[0] == "layer" and c[1] in self.layers):
                continue
            if self.lora and not (c[0] == "layer" and c[2]):
                continue
            out.add(c)
        return out


def parse_pattern(text: str) -> Pattern:
    """A pattern's terms; ValueError names an unknown term or a bad argument."""
    words = str(text).split()
    if not words:
        raise ValueError("empty pattern: expected terms like 'layers 8-15', 'lora', 'head'")
    kw: dict = {}
    i = 0
    while i < len(words):
        w = words[i]
        if w not in TERMS:
            raise ValueError(f"unknown pattern term {w!r} (known: {', '.join(TERMS)})")
        if w in kw:
            raise ValueError(f"{w!r} given twice")
        if w in ("layers", "names"):
            if i + 1 >= len(words):
                raise ValueError(f"{w!r} needs an argument ({'a layer range like 8-15' if w == 'layers' else 'a glob'})")
            kw[w] = _layer_set(words[i + 1]) if w == "layers" else words[i + 1]
            i += 2
        else:
            kw[w] = True
            i += 1
    if sum(bool(kw.get(k)) for k in ("head", "feature_encoder")) + ("layers" in kw or "lora" in kw) > 1:
        raise ValueError(f"{text!r} claims nothing: head, feature_encoder and layers/lora are disjoint")
    return Pattern(text=" ".join(words), **kw)


def static_overlap(patterns: list[Pattern]) -> tuple[int, int] | None:
    """The first two patterns that surely claim a common parameter (glob patterns are left to the model)."""
    n = 1 + max((max(p.layers) for p in patterns if p.layers), default=0) + 1  # and one layer none names
    cells = [p.cells(n) for p in patterns]
    for i, j in itertools.combinations(range(len(patterns)), 2):
        if cells[i] is not None and cells[j] is not None and cells[i] & cells[j]:
            return i, j
    return None
