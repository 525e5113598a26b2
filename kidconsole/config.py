"""Run configs: schema, defaults, ``--set key=value`` overrides, validation.

Light (no torch): the launcher validates a config before launch, the trainer
reads the resolved copy the launcher wrote into the run directory. Relative
paths in a config resolve against the folder of the config file; the resolved
config holds absolute paths, so the run directory's copy works from anywhere.
Every error names the file, the dotted key and the reason. Keys and meanings:
docs/training.md.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any, Sequence

import yaml

from kidconsole.errors import KidconsoleError
from kidconsole.hub import looks_like_hub_id

MONITORS = ("per", "cer", "wer", "loss")
PRECISIONS = ("no", "bf16", "fp16")
SCHEDULES = ("linear", "cosine", "constant")
STARTS = ("ctc", "encoder")
AUG_KEYS = ("speed_prob", "mask_time_prob", "mask_time_length", "mask_feature_prob", "mask_feature_length")

DEFAULTS: dict[str, Any] = {
    "name": None,
    "seed": 1234,
    "model": {
        "base": None,                  # local folder or hub id
        "start": "ctc",                # ctc: phoneme CTC checkpoint (its head mapped by symbol); encoder: new CTC head
        "max_missing_share": 0.1,      # ctc: the largest share of our symbols the checkpoint may lack (new rows)
        "freeze_feature_encoder": True,
        "freeze_layers": None,         # "0-7" or [0, 1, ...]: no adapters, no trainable weights there
        "ctc_zero_infinity": True,
        "layerdrop": 0.0,
    },
    "lora": {
        "enabled": True,               # false: full fine-tuning of every unfrozen weight
        "r": 16,
        "alpha": 32,
        "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj"],
        "layers": None,                # None: every layer not frozen; or "8-23" / [8, 9, ...]
    },
    "data": {
        "train_manifest": None,
        "valid_manifest": None,
        "test_manifest": None,
        "sample_rate": 16000,
        "max_seconds": 20.0,           # longer utterances are skipped (counted)
        "batch_seconds": 160.0,        # padded audio seconds per batch and process
        "max_batch_utterances": 64,
        "bucket_utterances": 2000,     # utterances sorted together when forming batches
        "num_workers": 4,
        "max_bad_share": 0.01,         # the run fails once more than this share of samples is bad
        "max_bad_samples": None,       # ... or more than this many (None: no cap)
        "valid_utterances": 2000,      # fixed validation sample (None: the whole manifest)
        "eval_batch_seconds": 320.0,
    },
    "train": {
        "mixed_precision": "no",
        "grad_accum": 1,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "schedule": "linear",          # decay after warmup
        "log_every": 10,
        "eval_every": 500,             # optimizer steps; also at the end of each phase
        "keep_last": 3,                # checkpoints kept besides the best ones
        "decodes_per_eval": 5,
        "heartbeat_seconds": 15.0,
        "stop_timeout": 120.0,         # seconds from SIGTERM to a forced exit
        "trace_batches": False,        # write trace.jsonl (utterance ids per step, each rank)
        "max_nonfinite_steps": 100,    # the run fails after this many non-finite steps in a row (None: never)
    },
    "augmentations": {
        "none": {"speed_prob": 0.0, "mask_time_prob": 0.0, "mask_time_length": 10,
                 "mask_feature_prob": 0.0, "mask_feature_length": 10},
        "weak": {"speed_prob": 0.2, "mask_time_prob": 0.02, "mask_time_length": 10,
                 "mask_feature_prob": 0.0, "mask_feature_length": 10},
        "medium": {"speed_prob": 0.4, "mask_time_prob": 0.04, "mask_time_length": 10,
                   "mask_feature_prob": 0.004, "mask_feature_length": 64},
        "strong": {"speed_prob": 0.6, "mask_time_prob": 0.065, "mask_time_length": 10,
                   "mask_feature_prob": 0.008, "mask_feature_length": 64},
    },
    "phases": [],
}

PHASE_DEFAULTS: dict[str, Any] = {
    "name": None,
    "fraction": 1.0,       # share of the train manifest (nested: 20% is inside 60%)
    "manifest": None,      # a phase's own train manifest instead of the run's
    "epochs": 1,
    "max_steps": None,     # optional cap on the phase's optimizer steps
    "lr": 1e-4,
    "warmup": 0,           # optimizer steps
    "augment": "none",     # a name from augmentations, or an inline mapping
    "patience": None,      # evaluations without improvement before stopping early (None: never)
    "min_delta": 0.0,
    "monitor": "per",
}


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``5e-4`` as a string; a learning rate written so must be a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def _err(where: str, key: str, reason: str) -> KidconsoleError:
    return KidconsoleError(f"{where}: {key}: {reason}")


def parse_layers(spec: Any, where: str = "", key: str = "") -> list[int] | None:
    """``"8-23"``, ``"0-3,6"``, ``[8, 9]`` or ``None`` -> sorted layer indices (None stays None)."""
    if spec is None:
        return None
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [spec]
    if isinstance(spec, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in spec):
        return sorted(set(spec))
    if isinstance(spec, str) and re.fullmatch(r"\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*", spec):
        out: set[int] = set()
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            lo_i, hi_i = int(lo), int(hi or lo)
            if hi_i < lo_i:
                raise _err(where, key, f"range {part.strip()!r} runs backwards")
            out.update(range(lo_i, hi_i + 1))
        return sorted(out)
    raise _err(where, key, f"expected a layer range like '8-23' or a list of integers, got {spec!r}")


def _merge(base: dict, over: dict, where: str, prefix: str, open_keys: bool = False) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        key = f"{prefix}{k}"
        if k not in base and not open_keys:
            raise _err(where, key, f"unknown key (known: {', '.join(base)})")
        if isinstance(base.get(k), dict) and k != "augmentations":
            if not isinstance(v, dict):
                raise _err(where, key, f"expected a mapping, got {type(v).__name__}")
            out[k] = _merge(base[k], v, where, key + ".")
        elif k == "augmentations":
            if not isinstance(v, dict):
                raise _err(where, key, "expected a mapping of name -> settings")
            out[k] = {**base[k], **v}
        else:
            out[k] = copy.deepcopy(v)
    return out


def _set_dotted(raw: dict, assignment: str, where: str) -> None:
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise KidconsoleError(f"{where}: override {assignment!r} is not key=value")
    try:
        parsed = _yaml(value) if value.strip() else None
    except yaml.YAMLError as e:
        raise _err(where, key, f"cannot parse value {value!r}: {e}") from e
    node: Any = raw
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise _err(where, key, f"{part!r} is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = parsed
            else:
                node = node[int(part)]
        else:
            if last:
                node[part] = parsed
            else:
                nxt = node.get(part)
                if nxt is None:
                    nxt = node[part] = {}
                node = nxt


def _check(cond: bool, where: str, key: str, reason: str) -> None:
    if not cond:
        raise _err(where, key, reason)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _resolve_path(value: Any, base_dir: Path, where: str, key: str, must_exist: bool) -> str | None:
    if value is None:
        return None
    _check(isinstance(value, str) and value.strip() != "", where, key, "expected a path")
    p = Path(value).expanduser()
    p = p if p.is_absolute() else (base_dir / p)
    if must_exist and not p.exists():
        raise _err(where, key, f"{p} does not exist")
    return str(p.resolve())


def _validate(cfg: dict, where: str, base_dir: Path) -> dict:
    m, lo, d, t = cfg["model"], cfg["lora"], cfg["data"], cfg["train"]
    _check(isinstance(cfg["seed"], int), where, "seed", "expected an integer")

    _check(isinstance(m["base"], str) and m["base"], where, "model.base", "required: a local model folder or a hub id")
    local = (base_dir / Path(m["base"]).expanduser())
    if local.exists() or not looks_like_hub_id(m["base"]):
        m["base"] = _resolve_path(m["base"], base_dir, where, "model.base", must_exist=True)
    _check(m["start"] in STARTS, where, "model.start", f"expected one of {', '.join(STARTS)}, got {m['start']!r}")
    for k in ("freeze_feature_encoder", "ctc_zero_infinity"):
        _check(isinstance(m[k], bool), where, f"model.{k}", "expected true or false")
    _check(_number(m["max_missing_share"]) and 0 <= m["max_missing_share"] <= 1, where, "model.max_missing_share",
           "expected a share between 0 and 1")
    _check(_number(m["layerdrop"]) and 0 <= m["layerdrop"] < 1, where, "model.layerdrop", "expected 0 <= value < 1")
    m["freeze_layers"] = parse_layers(m["freeze_layers"], where, "model.freeze_layers")

    _check(isinstance(lo["enabled"], bool), where, "lora.enabled", "expected true or false")
    _check(isinstance(lo["r"], int) and lo["r"] > 0, where, "lora.r", "expected a positive integer")
    _check(_number(lo["alpha"]) and lo["alpha"] > 0, where, "lora.alpha", "expected a positive number")
    _check(_number(lo["dropout"]) and 0 <= lo["dropout"] < 1, where, "lora.dropout", "expected 0 <= value < 1")
    _check(isinstance(lo["target_modules"], list) and lo["target_modules"]
           and all(isinstance(x, str) for x in lo["target_modules"]),
           where, "lora.target_modules", "expected a non-empty list of module names")
    lo["layers"] = parse_layers(lo["layers"], where, "lora.layers")
    if lo["layers"] is not None and m["freeze_layers"]:
        both = sorted(set(lo["layers"]) & set(m["freeze_layers"]))
        _check(not both, where, "lora.layers", f"layers {both} are also in model.freeze_layers")

    d["train_manifest"] = _resolve_path(d["train_manifest"], base_dir, where, "data.train_manifest", True)
    d["valid_manifest"] = _resolve_path(d["valid_manifest"], base_dir, where, "data.valid_manifest", True)
    d["test_manifest"] = _resolve_path(d["test_manifest"], base_dir, where, "data.test_manifest", True)
    _check(d["valid_manifest"] is not None, where, "data.valid_manifest", "required")
    for k in ("sample_rate", "max_batch_utterances", "bucket_utterances"):
        _check(isinstance(d[k], int) and d[k] > 0, where, f"data.{k}", "expected a positive integer")
    _check(isinstance(d["num_workers"], int) and d["num_workers"] >= 0, where, "data.num_workers",
           "expected an integer >= 0")
    for k in ("max_seconds", "batch_seconds", "eval_batch_seconds"):
        _check(_number(d[k]) and d[k] > 0, where, f"data.{k}", "expected a positive number of seconds")
    _check(d["batch_seconds"] >= d["max_seconds"], where, "data.batch_seconds",
           f"must be at least data.max_seconds ({d['max_seconds']}) so that every utterance fits a batch")
    _check(_number(d["max_bad_share"]) and 0 <= d["max_bad_share"] <= 1, where, "data.max_bad_share",
           "expected a share between 0 and 1")
    _check(d["max_bad_samples"] is None or (isinstance(d["max_bad_samples"], int) and d["max_bad_samples"] >= 0),
           where, "data.max_bad_samples", "expected an integer >= 0 or null (no cap)")
    _check(d["valid_utterances"] is None or (isinstance(d["valid_utterances"], int) and d["valid_utterances"] > 0),
           where, "data.valid_utterances", "expected a positive integer or null (all)")

    _check(t["mixed_precision"] in PRECISIONS, where, "train.mixed_precision",
           f"expected one of {', '.join(PRECISIONS)}, got {t['mixed_precision']!r}")
    _check(t["schedule"] in SCHEDULES, where, "train.schedule", f"expected one of {', '.join(SCHEDULES)}")
    for k in ("grad_accum", "log_every", "eval_every", "keep_last"):
        _check(isinstance(t[k], int) and t[k] > 0, where, f"train.{k}", "expected a positive integer")
    _check(isinstance(t["decodes_per_eval"], int) and t["decodes_per_eval"] >= 0, where,
           "train.decodes_per_eval", "expected an integer >= 0")
    for k in ("heartbeat_seconds", "stop_timeout"):
        _check(_number(t[k]) and t[k] > 0, where, f"train.{k}", "expected a positive number of seconds")
    for k in ("weight_decay", "max_grad_norm"):
        _check(_number(t[k]) and t[k] >= 0, where, f"train.{k}", "expected a number >= 0")
    _check(isinstance(t["trace_batches"], bool), where, "train.trace_batches", "expected true or false")
    _check(t["max_nonfinite_steps"] is None or (isinstance(t["max_nonfinite_steps"], int)
                                                and t["max_nonfinite_steps"] > 0), where, "train.max_nonfinite_steps",
           "expected a positive integer or null (never)")

    for name, aug in cfg["augmentations"].items():
        _check_augment(aug, where, f"augmentations.{name}")

    phases = cfg["phases"]
    _check(isinstance(phases, list) and phases, where, "phases", "expected a non-empty list of phases")
    out = []
    for i, raw in enumerate(phases):
        key = f"phases.{i}"
        _check(isinstance(raw, dict), where, key, "expected a mapping")
        p = _merge(PHASE_DEFAULTS, raw, where, key + ".")
        p["name"] = p["name"] or f"phase{i + 1}"
        _check(_number(p["fraction"]) and 0 < p["fraction"] <= 1, where, f"{key}.fraction",
               "expected a share in (0, 1]")
        p["manifest"] = _resolve_path(p["manifest"], base_dir, where, f"{key}.manifest", True)
        _check(p["manifest"] is not None or d["train_manifest"] is not None, where, f"{key}.manifest",
               "no train manifest: set data.train_manifest or this phase's manifest")
        _check(isinstance(p["epochs"], int) and p["epochs"] > 0, where, f"{key}.epochs", "expected a positive integer")
        _check(p["max_steps"] is None or (isinstance(p["max_steps"], int) and p["max_steps"] > 0), where,
               f"{key}.max_steps", "expected a positive integer or null")
        _check(_number(p["lr"]) and p["lr"] > 0, where, f"{key}.lr", "expected a positive number")
        _check(isinstance(p["warmup"], int) and p["warmup"] >= 0, where, f"{key}.warmup", "expected an integer >= 0")
        _check(p["patience"] is None or (isinstance(p["patience"], int) and p["patience"] > 0), where,
               f"{key}.patience", "expected a positive integer or null")
        _check(_number(p["min_delta"]) and p["min_delta"] >= 0, where, f"{key}.min_delta", "expected a number >= 0")
        _check(p["monitor"] in MONITORS, where, f"{key}.monitor", f"expected one of {', '.join(MONITORS)}")
        if isinstance(p["augment"], str):
            _check(p["augment"] in cfg["augmentations"], where, f"{key}.augment",
                   f"unknown augmentation {p['augment']!r} (known: {', '.join(cfg['augmentations'])})")
        else:
            _check_augment(p["augment"], where, f"{key}.augment")
        out.append(p)
    cfg["phases"] = out
    return cfg


def _check_augment(aug: Any, where: str, key: str) -> None:
    _check(isinstance(aug, dict), where, key, "expected a mapping of augmentation settings")
    unknown = set(aug) - set(AUG_KEYS)
    _check(not unknown, where, f"{key}.{sorted(unknown)[0] if unknown else ''}",
           f"unknown key (known: {', '.join(AUG_KEYS)})")
    missing = set(AUG_KEYS) - set(aug)
    _check(not missing, where, key, f"lacks {', '.join(sorted(missing))}")
    for k in ("speed_prob", "mask_time_prob", "mask_feature_prob"):
        _check(_number(aug[k]) and 0 <= aug[k] <= 1, where, f"{key}.{k}", "expected a probability in [0, 1]")
    for k in ("mask_time_length", "mask_feature_length"):
        _check(isinstance(aug[k], int) and aug[k] > 0, where, f"{key}.{k}", "expected a positive integer")


def resolve_config(raw: dict, where: str = "<config>", base_dir: str | Path = ".",
                   overrides: Sequence[str] = ()) -> dict:
    """Defaults filled, overrides applied, validated; paths made absolute against ``base_dir``."""
    if not isinstance(raw, dict):
        raise KidconsoleError(f"{where}: a run config must be a YAML mapping")
    raw = copy.deepcopy(raw)
    for assignment in overrides:
        _set_dotted(raw, assignment, f"{where} (--set {assignment})")
    cfg = _merge(DEFAULTS, raw, where, "")
    return _validate(cfg, where, Path(base_dir).resolve())


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> dict:
    """Read, resolve and validate a run config; relative paths resolve against its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise KidconsoleError(f"cannot read config {path}: {e.strerror}") from e
    try:
        raw = _yaml(text) or {}
    except yaml.YAMLError as e:
        raise KidconsoleError(f"{path}: not valid YAML: {e}") from e
    return resolve_config(raw, str(path), path.parent, overrides)


def dump_config(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(dump_config(cfg).encode("utf-8")).hexdigest()


def phase_augment(cfg: dict, phase: dict) -> dict:
    """The augmentation settings of a phase (a named preset or inline)."""
    aug = phase["augment"]
    return dict(cfg["augmentations"][aug] if isinstance(aug, str) else aug)
