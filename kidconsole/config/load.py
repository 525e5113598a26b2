"""Resolving a config (defaults, overrides, validation, absolute paths), reading a run's copy, writing it."""

import copy
import hashlib
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import ValidationError

from kidconsole.config.explain import _explained
from kidconsole.config.overrides import _set_dotted
from kidconsole.config.schema import RunConfig
from kidconsole.config.yamlfile import read_yaml
from kidconsole.errors import KidconsoleError


def resolve_config(raw: Any, where: str = "<config>", base_dir: str | Path = ".",
                   overrides: Sequence[str] = (), check_paths: bool = True) -> RunConfig:
    """Defaults filled, overrides applied, validated; paths made absolute against ``base_dir``
    (and required to exist unless ``check_paths`` is false)."""
    if not isinstance(raw, dict):
        raise KidconsoleError(f"{where}: a run config must be a YAML mapping")
    raw = copy.deepcopy(raw)
    for assignment in overrides:
        _set_dotted(raw, assignment, f"{where} (--set {assignment})")
    context = {"base_dir": Path(base_dir).resolve(), "check_paths": check_paths}
    try:
        return RunConfig.model_validate(raw, context=context)
    except ValidationError as e:
        raise _explained(e, where) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read, resolve and validate a run config; relative paths resolve against its folder."""
    path = Path(path)
    return resolve_config(read_yaml(path) or {}, str(path), path.parent, overrides)


def read_run_config(run_dir: str | Path) -> RunConfig | None:
    """A run directory's resolved config, for readers that must never fail (the console, reports).

    None when config.yaml is absent, unreadable, over the size limit, not YAML, or not valid under
    this schema (a broken file, or one written by an incompatible version). Paths are read as written,
    not checked: a finished run's manifests may have moved since."""
    from kidconsole import rundir

    path = Path(run_dir) / rundir.CONFIG
    try:
        return resolve_config(read_yaml(path), str(path), path.parent, check_paths=False)
    except (KidconsoleError, ValueError, RecursionError):
        return None


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(), sort_keys=False, allow_unicode=True)


def config_hash(cfg: RunConfig) -> str:
    return hashlib.sha256(dump_config(cfg).encode("utf-8")).hexdigest()

