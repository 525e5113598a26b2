"""Where ``model.base`` comes from: a local folder, or a Hugging Face hub id found in the local cache or
reachable on the hub. Light (standard library only): the launcher checks a base before it starts a run.

Offline, ``transformers`` spends over a minute in retries before it gives up on a hub id, so the launcher
looks for the id in the local cache itself (the cache layout and environment variables of
``huggingface_hub``: ``HF_HUB_CACHE``, ``HF_HOME``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``) and, when it is
not there, asks the hub once with a short timeout, telling "unreachable" apart from "not found or private".
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path

from kidconsole.errors import KidconsoleError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_SECONDS = 3.0  # the whole question to the hub, name resolution included
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TRUE = {"1", "ON", "YES", "TRUE"}


def looks_like_hub_id(value: str) -> bool:
    """``owner/name`` as the hub spells repository ids."""
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", value)) and not value.startswith(".")


def cache_dir() -> Path:
    """The hub cache folder, by huggingface_hub's rules."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ.get("HF_HUB_CACHE") or os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    return any((os.environ.get(k) or "").upper() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of ``repo_id`` (its ``main`` ref, else the newest) when it holds a config and
    weights; None otherwise."""
    root = cache_dir() / f"models--{repo_id.replace('/', '--')}"
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return None
    ref = root / "refs" / "main"
    candidates = []
    if ref.is_file():
        candidates.append(snaps / ref.read_text(encoding="utf-8").strip())
    candidates += sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in candidates:
        if (snap / "config.json").is_file() and any((snap / w).is_file() for w in WEIGHTS):
            return snap
    return None


def download_hint(repo_id: str) -> str:
    return (f"on a machine with internet run `hf download {repo_id} --local-dir models/{repo_id.split('/')[-1]}`, "
            f"copy that folder here and set model.base to its path")


def _token() -> str | None:
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    path = os.environ.get("HF_TOKEN_PATH") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "token")
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def probe(repo_id: str, timeout: float = PROBE_SECONDS) -> tuple[str, str]:
    """Ask the hub about ``repo_id`` once: ("ok" | "missing" | "unreachable", detail), within ``timeout``.
    "missing" only on the hub's own answer (huggingface_hub's rule: a 401, or an ``X-Error-Code`` such as
    RepoNotFound or GatedRepo): a proxy or firewall that answers 404 for every host is not the hub."""
    url = f"{endpoint()}/api/models/{repo_id}"
    result: list[tuple[str, str]] = []

    def ask() -> None:
        req = urllib.request.Request(url, method="GET")
        token = _token()
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read(1 << 16)
            try:
                known = isinstance(json.loads(body), dict) and "id" in json.loads(body)
            except ValueError:
                known = False
            result.append(("ok", url) if known else ("unreachable", f"{url} answered, but not as the model hub"))
        except urllib.error.HTTPError as e:
            code = e.headers.get("X-Error-Code") if e.headers else None
            if e.code == 401 or (e.code in (403, 404) and code):
                result.append(("missing", f"HTTP {e.code}{f' {code}' if code else ''} from {url}"))
            else:
                result.append(("unreachable", f"HTTP {e.code} from {url}, not the model hub's answer"))
        except (urllib.error.URLError, OSError, ValueError) as e:
            result.append(("unreachable", f"{endpoint()}: {getattr(e, 'reason', e)}"))

    # name resolution ignores socket timeouts: the thread bounds the whole question
    t = threading.Thread(target=ask, name="hub-probe", daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return result[0] if result else ("unreachable", f"{endpoint()}: no answer in {timeout:g} s")


def check_local(base: str) -> Path:
    """A local ``model.base``: a folder with config.json, else a clear error."""
    path = Path(base)
    if not path.exists():
        raise KidconsoleError(f"model.base {base}: does not exist")
    if not path.is_dir():
        raise KidconsoleError(f"model.base {base}: is a file, not a model folder (expected a folder with "
                              f"config.json and model.safetensors, as save_pretrained writes)")
    if not (path / "config.json").is_file():
        raise KidconsoleError(f"model.base {base}: {path / 'config.json'} is missing: not a saved model folder")
    return path


def check_base(base: str, timeout: float = PROBE_SECONDS) -> Path | None:
    """Before launch: the local folder or cached snapshot ``base`` names, or None for a hub id the hub
    has (the trainer downloads it). A base that cannot load raises, saying why and what to do."""
    if Path(base).exists() or not looks_like_hub_id(base):
        return check_local(base)
    snap = cached_snapshot(base)
    if snap is not None:
        return snap
    where = f"not a local folder, and not in the local hub cache ({cache_dir()})"
    if offline():
        raise KidconsoleError(f"model.base {base}: {where}; HF_HUB_OFFLINE is set, so it cannot be downloaded: "
                              + download_hint(base))
    kind, detail = probe(base, timeout)
    if kind == "missing":
        raise KidconsoleError(f"model.base {base}: the model hub has no model {base} that you can read ({detail}): "
                              f"check the id; for a private model log in first (`hf auth login` or HF_TOKEN)")
    if kind == "unreachable":
        raise KidconsoleError(f"model.base {base}: {where}, and the model hub is unreachable ({detail}): "
                              + download_hint(base))
    return None
