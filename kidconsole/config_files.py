"""Run configs as files: the shipped ones, the user's own, a new one made from either with its required edits
marked, a file checked with each error at its line, two configs compared key by key.

The shipped configs are package data (``kidconsole.configs``, the repository's configs/ folder), so a plain
install carries them. Their relative paths are written for a project's ``configs/`` folder (``../build/x`` is
``build/x`` of the project), so a copy made in a project points where the comments say; every other config's
relative paths resolve against its own folder (kidconsole/config/). Comments survive a copy and ``--set``
(ruamel.yaml's round trip, the library made for editing YAML that people wrote); validation is the schema's.
"""

from __future__ import annotations

import importlib.resources
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from kidconsole import rundir
from kidconsole.errors import KidconsoleError

PACKAGE = "kidconsole.configs"
SUFFIXES = (".yaml", ".yml")
PROJECT_CONFIGS = "configs"  # a project's own configs; the shipped configs' relative paths start here
EDIT = "EDIT"                # the mark on a line that must change before the config can launch


# ---------- finding configs ----------

def packaged_dir() -> Path:
    return Path(str(importlib.resources.files(PACKAGE)))


def packaged() -> dict[str, Path]:
    """The shipped configs by name (file stem), sorted."""
    folder = packaged_dir()
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in SUFFIXES}


def is_packaged(path: str | Path) -> bool:
    return Path(path).resolve().parent == packaged_dir().resolve()


def base_dir(path: str | Path, project: str | Path = ".") -> Path:
    """Where ``path``'s relative paths resolve: a project's configs/ for a shipped config, else its folder."""
    return Path(project).resolve() / PROJECT_CONFIGS if is_packaged(path) else Path(path).resolve().parent


def own(folders: Sequence[str | Path] = (PROJECT_CONFIGS, ".")) -> list[Path]:
    """The user's run configs: YAML files in ``folders`` that hold a mapping with ``phases`` (bounded reads;
    a file that cannot be read or parsed is left out here: ``config check`` says why)."""
    from kidconsole.config import read_yaml

    out: list[Path] = []
    seen: set[Path] = set()
    for folder in map(Path, folders):
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file()):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                raw = read_yaml(path)
            except KidconsoleError:
                continue
            if isinstance(raw, dict) and "phases" in raw:
                out.append(path)
    return out


def find(name: str | Path) -> Path:
    """A config file by path, a run directory's config, or a shipped config by name (``tiny_cpu``)."""
    path = Path(name)
    if path.is_dir() and (path / rundir.CONFIG).is_file():
        return path / rundir.CONFIG
    if path.is_file():
        return path
    shipped = packaged()
    stem = path.name.removesuffix(path.suffix) if path.suffix in SUFFIXES else path.name
    if len(path.parts) == 1 and stem in shipped:
        return shipped[stem]
    raise KidconsoleError(f"no config {str(name)!r}: not a file, a run directory or a shipped config "
                          f"(shipped: {', '.join(shipped)}; `kidconsole config list`)")


def summary(path: Path) -> str:
    """The first line of a config's leading comment (what it is for), or ''."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline(500)
    except OSError:
        return ""
    return first[1:].strip() if first.startswith("#") else ""


# ---------- errors as (key, reason), and where a key is written ----------

@dataclass(frozen=True)
class Problem:
    key: str
    reason: str
    line: int | None = None  # 1-based; None: the key is not written in the file

    def shown(self, where: str) -> str:
        return f"{where}:{self.line}: {self.key}: {self.reason}" if self.line else f"{where}: {self.key}: {self.reason}"


def problems(raw: Any, base: Path, check_paths: bool = True) -> list[Problem]:
    """The schema's errors in ``raw`` (resolved against ``base``), one per key, in the user's words."""
    from pydantic import ValidationError

    from kidconsole.config import RunConfig
    from kidconsole.config.explain import _reason

    if not isinstance(raw, dict):
        return [Problem("(file)", "a run config must be a YAML mapping")]
    try:
        RunConfig.model_validate(raw, context={"base_dir": base, "check_paths": check_paths})
    except ValidationError as e:
        found: dict[str, str] = {}
        for err in e.errors(include_url=False):
            key, reason = _reason(err)
            found.setdefault(key, reason)
        return [Problem(k, r) for k, r in found.items()]
    return []


def _round_trip():
    from ruamel.yaml import YAML

    y = YAML()  # round trip: comments, key order and quoting kept
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)  # as the shipped configs are written
    y.width = 10 ** 6
    return y


def _load_round_trip(text: str, where: str, allow_duplicates: bool = False):
    """A round-trip document; a key written twice raises ruamel's DuplicateKeyError unless allowed."""
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import YAMLError

    y = _round_trip()
    y.allow_duplicate_keys = allow_duplicates
    try:
        return y.load(text)
    except DuplicateKeyError:
        raise
    except YAMLError as e:
        raise KidconsoleError(f"{where}: not valid YAML: {e}") from None


def _deepest(doc: Any, key: str) -> tuple[Any, Any, list[str]]:
    """The deepest node of ``doc`` on the dotted ``key``'s way: (its container, its key or index, the parts
    not found below it); (None, None, parts) when not even the first part is there."""
    node, holder, slot, parts = doc, None, None, key.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            holder, slot = node, part
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            holder, slot = node, int(part)
        else:
            return holder, slot, parts[i:]
        node = node[slot]
    return holder, slot, []


def key_line(doc: Any, key: str) -> int | None:
    """The 1-based line where ``key`` (or the deepest part of it that is written) is in a round-trip document."""
    holder, slot, _ = _deepest(doc, key)
    if holder is None:
        return None
    pos = holder.lc.key(slot) if isinstance(slot, str) else holder.lc.item(slot)
    return pos[0] + 1


def check(path: str | Path, overrides: Sequence[str] = ()) -> list[Problem]:
    """``config check``: every schema error of the file (after ``overrides``) with the line of its key, and
    keys written twice in a mapping (YAML keeps the last one silently)."""
    from ruamel.yaml.constructor import DuplicateKeyError

    from kidconsole.config import read_yaml
    from kidconsole.config.overrides import _set_dotted

    path = Path(path)
    raw = read_yaml(path)  # bounded, and 5e-4 a number as the launcher reads it
    if not isinstance(raw, dict):
        return [Problem("(file)", "a run config must be a YAML mapping")]
    for assignment in overrides:
        _set_dotted(raw, assignment, f"{path} (--set {assignment})")
    found = problems(raw, base_dir(path))
    text = path.read_text(encoding="utf-8")  # read_yaml has checked its size and encoding
    twice: list[Problem] = []
    try:
        doc = _load_round_trip(text, str(path))
    except DuplicateKeyError as e:
        name = re.search(r'duplicate key "([^"]*)"', str(e.problem))
        twice = [Problem(name.group(1) if name else "(key)", "written twice in one mapping: the last one wins",
                         e.problem_mark.line + 1 if e.problem_mark else None)]
        doc = _load_round_trip(text, str(path), allow_duplicates=True)
    if not found:
        found = _base_problems(raw, base_dir(path))
    return twice + [Problem(p.key, p.reason, key_line(doc, p.key)) for p in found]


def _base_problems(raw: dict, base: Path) -> list[Problem]:
    """What the launcher's look at model.base finds (a folder that cannot load, a hub id neither cached nor
    on the hub): a valid file can still fail there."""
    from kidconsole.config import resolve_config
    from kidconsole.hub import check_base

    cfg = resolve_config(raw, base_dir=base, check_paths=True)
    try:
        check_base(cfg.model.base)
    except KidconsoleError as e:
        return [Problem("model.base", str(e).removeprefix(f"model.base {cfg.model.base}: "))]
    return []


# ---------- a new config from a shipped one ----------

@dataclass(frozen=True)
class NewConfig:
    text: str
    edits: list[Problem]  # what must change before it launches (each marked in the text)


def _path_keys(raw: dict, base: Path) -> dict[str, Path]:
    """The keys of ``raw`` that hold relative paths (the schema made them absolute against ``base``), with
    the absolute path each means."""
    from kidconsole.config import resolve_config

    cfg = resolve_config(raw, base_dir=base, check_paths=False).model_dump()
    resolved = flatten(cfg)
    out = {}
    for key, value in flatten(raw).items():
        if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            absolute = (base / Path(value).expanduser()).resolve()
            if resolved.get(key) == str(absolute):
                out[key] = absolute
    return out


def _set(doc: Any, key: str, value: Any) -> None:
    node = doc
    parts = key.split(".")
    for part in parts[:-1]:
        slot: Any = int(part) if isinstance(node, list) else part
        if isinstance(node, dict) and node.get(slot) is None:
            from ruamel.yaml.comments import CommentedMap

            node[slot] = CommentedMap()
        node = node[slot]
    node[int(parts[-1]) if isinstance(node, list) else parts[-1]] = value


def _plain(doc: Any) -> Any:
    """A round-trip document as plain dicts and lists, numbers read as the launcher reads them."""
    from kidconsole.config.yamlfile import _yaml

    buf = io.StringIO()
    _round_trip().dump(doc, buf)
    return _yaml(buf.getvalue())


def _relative(target: Path, folder: Path) -> str:
    return os.path.relpath(target, folder)


def new_config(source: str | Path, out: str | Path, overrides: Sequence[str] = (),
               project: str | Path = ".") -> NewConfig:
    """A copy of ``source`` (a shipped config's name or a file) for ``out``: its comments kept, relative paths
    rewritten to mean the same places from ``out``'s folder, ``overrides`` applied (relative paths in them
    as typed from ``project``, the working folder), and each key that fails the schema marked ``# EDIT``
    with the reason, the marks also listed at the top."""
    from kidconsole.config import read_yaml
    from kidconsole.config.overrides import _set_dotted
    from kidconsole.config.yamlfile import _yaml

    src = find(source)
    read_yaml(src)  # the project's bounded reader refuses what is too large, not YAML or not UTF-8 first
    shown, out = out, Path(out).resolve()
    here = out.parent
    project = Path(project).resolve()
    text = src.read_text(encoding="utf-8")
    doc = _load_round_trip(text, str(src))
    if not isinstance(doc, dict):
        raise KidconsoleError(f"{src}: a run config must be a YAML mapping")
    moved = _path_keys(_plain(doc), base_dir(src, project))
    for key, absolute in moved.items():
        _set(doc, key, _relative(absolute, here))
    for assignment in overrides:
        where = f"--set {assignment}"
        probe = _plain(doc)
        _set_dotted(probe, assignment, where)  # the schema's checks of the key, before it is written
        key, _, value = assignment.partition("=")
        key = key.strip()
        parsed = _yaml(value) if value.strip() else None
        paths = _path_keys(probe, project) if isinstance(parsed, str) else {}
        _set(doc, key, _relative(paths[key], here) if key in paths else parsed)
        moved.pop(key, None)
        moved.update({key: paths[key]} if key in paths else {})
    probe = _plain(doc)
    for key, absolute in moved.items():  # checked as absolute: ``out``'s folder may not exist yet
        _set(probe, key, str(absolute))
    edits = problems(probe, here)
    # a relative model.base that is not there reads as a hub id to the schema: in a copy it is a folder to make
    edits += [Problem(k, f"{p} does not exist") for k, p in moved.items()
              if not p.exists() and k not in {e.key for e in edits}]
    for p in edits:
        holder, slot, missing = _deepest(doc, p.key)
        if holder is not None:
            holder.yaml_add_eol_comment(f"{EDIT}: {p.key + ': ' if missing else ''}{p.reason}", slot)
    buf = io.StringIO()
    _round_trip().dump(doc, buf)
    written = buf.getvalue()
    if edits:
        head = [f"{EDIT} before launching: {len(edits)} key(s) marked below (`kidconsole config check "
                f"{shown}` lists what is left)"] + [f"  {p.key}: {_meaning(p.key)}" for p in edits]
        written = "".join(f"# {line}\n" for line in head) + "#\n" + written
    lines = _load_round_trip(written, str(out))
    return NewConfig(written, [Problem(p.key, p.reason, key_line(lines, p.key)) for p in edits])


def write_new(source: str | Path, out: str | Path, overrides: Sequence[str] = (), force: bool = False) -> NewConfig:
    """``new_config`` written to ``out`` (never over a file unless ``force``)."""
    out = Path(out)
    if out.exists() and not force:
        raise KidconsoleError(f"{out} already exists (--force to overwrite)")
    made = new_config(source, out, overrides)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(made.text, encoding="utf-8")
    return made


def copy_packaged(path: str | Path, folder: str | Path) -> Path:
    """A shipped config copied into the project's ``folder`` under its own name, its required edits marked."""
    out = Path(folder) / f"{Path(path).stem}.yaml"
    if out.exists():
        raise KidconsoleError(f"{out} exists already: choose it among your configs, or remove it to copy "
                              f"the shipped {Path(path).stem} again")
    write_new(path, out)
    return out


def _meaning(key: str) -> str:
    """The schema's help for a dotted key."""
    from kidconsole.config.walk import _walk

    try:
        field = _walk([int(p) if p.isdigit() else p for p in key.split(".")])[1]
    except (KeyError, TypeError, AttributeError):
        field = None
    return (field.description or "") if field is not None else ""


# ---------- comparing ----------

def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys to leaf values (``phases.0.lr``), so two configs compare key by key."""
    out: dict[str, Any] = {}
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(cfg, list) and any(isinstance(v, (dict, list)) for v in cfg):
        for i, v in enumerate(cfg):
            out.update(flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = cfg
    return out


MISSING = object()
IGNORED_IN_DIFF = ("name",)  # every run differs by name: not a hyperparameter


def config_diff(a: dict, b: dict) -> list[tuple[str, Any, Any]]:
    """(key, value in a, value in b) for every key whose value differs; MISSING where a side lacks it."""
    fa, fb = flatten(a), flatten(b)
    keys = sorted(set(fa) | set(fb))
    return [(k, fa.get(k, MISSING), fb.get(k, MISSING)) for k in keys
            if k not in IGNORED_IN_DIFF and fa.get(k, MISSING) != fb.get(k, MISSING)]


def show_value(v: Any) -> str:
    return "(absent)" if v is MISSING else \
        yaml.safe_dump(v, default_flow_style=True, width=10 ** 6).strip().removesuffix("...").strip()


def resolved(path: Path, project: str | Path = ".") -> dict:
    """A config with every default filled in (paths as the launcher would make them, not checked)."""
    from kidconsole.config import read_yaml, resolve_config

    return resolve_config(read_yaml(path), str(path), base_dir(path, project), check_paths=False).model_dump()
