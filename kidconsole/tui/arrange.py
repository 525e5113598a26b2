"""Which runs the dashboard shows and in what order: a filter (name, state, config key), a sort (name, best
PER, newest start) and groups of runs launched from the same config file. Pure functions of the views (and,
for config keys, of the runs' flattened configs), so the dashboard stays usable with a sweep of many runs.

Filter syntax: words separated by spaces, all of which must hold:
- ``state:running`` (or ``state:running,stalled``): the run's state is one of these;
- ``KEY=VALUE``: a config key (dotted, ``lora.r=16``; a final part alone matches every key ending in it,
  ``lr=3e-4`` matches ``phases.0.lr``) has that value (numbers compare as numbers);
- any other word: part of the run's name or its state (case-insensitive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

SORTS = ("name", "best PER", "newest")
NO_GROUP = "(no config file)"


@dataclass(frozen=True)
class Term:
    kind: str  # "state", "config" or "text"
    key: str
    value: str = ""


class FilterError(ValueError):
    pass


def parse_filter(text: str) -> list[Term]:
    terms = []
    for word in text.split():
        if word.startswith("state:"):
            if not word[6:]:
                raise FilterError("state: needs a state, e.g. state:running")
            terms.append(Term("state", word[6:].lower()))
        elif "=" in word:
            key, _, value = word.partition("=")
            if not key:
                raise FilterError(f"{word}: a config key before '=', e.g. lora.r=16")
            terms.append(Term("config", key, value))
        else:
            terms.append(Term("text", word.lower()))
    return terms


def needs_configs(terms: Iterable[Term]) -> bool:
    return any(t.kind == "config" for t in terms)


def _same(actual: Any, wanted: str) -> bool:
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            return math.isclose(float(actual), float(wanted), rel_tol=1e-9)
        except ValueError:
            return False
    if isinstance(actual, bool):
        return wanted.lower() in (("true", "yes", "on") if actual else ("false", "no", "off"))
    if actual is None:
        return wanted.lower() in ("null", "none", "~", "")
    return str(actual) == wanted


def matches(view, terms: list[Term], flat_config: dict[str, Any] | None) -> bool:
    for t in terms:
        if t.kind == "state":
            if view.state not in t.key.split(","):
                return False
        elif t.kind == "text":
            if t.key not in view.name.lower() and t.key != view.state:
                return False
        else:
            if flat_config is None:
                return False
            keys = [k for k in flat_config if k == t.key or k.endswith("." + t.key)]
            if not any(_same(flat_config[k], t.value) for k in keys):
                return False
    return True


def best_per(view) -> float:
    best = view.best.get("eval/per")
    v = best[0] if best else view.test.get("per") if view.test else None
    return v if isinstance(v, (int, float)) and math.isfinite(v) else math.inf


def sort_views(views: list, how: str) -> list:
    # by name, but the runs of one sweep side by side in their grid order (named SWEEP-01, SWEEP-02, ...)
    by_name = sorted(views, key=lambda v: (v.sweep or v.name, v.name, v.key))
    if how == "best PER":
        return sorted(by_name, key=best_per)  # runs without a PER last
    if how == "newest":
        return sorted(by_name, key=lambda v: -(v.started_at or 0.0))
    return by_name


def group_name(view) -> str:
    """The config file a run was launched from (its stem), the runs of one sweep share it."""
    return Path(view.source_config).stem if view.source_config else NO_GROUP


def arrange(views: Iterable, terms: list[Term], how: str, grouped: bool,
            configs: dict[str, dict] | None = None) -> list[tuple[str | None, list]]:
    """[(group name or None, its runs in order)]: one untitled group unless ``grouped``."""
    configs = configs or {}
    shown = sort_views([v for v in views if matches(v, terms, configs.get(v.key))], how)
    if not grouped:
        return [(None, shown)]
    groups: dict[str, list] = {}
    for v in shown:
        groups.setdefault(group_name(v), []).append(v)
    return sorted(groups.items(), key=lambda kv: (kv[0] == NO_GROUP, kv[0]))
