"""Will logging out kill the runs? systemd-logind with KillUserProcesses=yes kills every
process of the login session's scope, new session or not, unless lingering is enabled
and the run is moved out of the session scope."""

from __future__ import annotations

import getpass
import glob
import os
from pathlib import Path

CONF = "/etc/systemd/logind.conf"
DROPIN_DIRS = ("/usr/lib/systemd/logind.conf.d", "/usr/local/lib/systemd/logind.conf.d",
               "/run/systemd/logind.conf.d", "/etc/systemd/logind.conf.d")


def _settings(paths: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in paths:
        section = ""
        try:
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Login" and "=" in line and not line.startswith(("#", ";")):
                key, _, value = line.partition("=")
                out[key.strip()] = value.strip()
    return out


def _yes(value: str | None) -> bool:
    return (value or "").lower() in ("1", "yes", "true", "on")


def logind_warning(user: str | None = None, *, conf: str = CONF, dropin_dirs=DROPIN_DIRS,
                   linger_dir: str = "/var/lib/systemd/linger", systemd_dir: str = "/run/systemd/system") -> str | None:
    """A warning with the fix when logout would kill this user's runs; None otherwise."""
    if not os.path.isdir(systemd_dir):
        return None  # not booted with systemd (containers, other init): logind kills nothing
    user = user or getpass.getuser()
    paths = [conf] + sorted((p for d in dropin_dirs for p in glob.glob(os.path.join(d, "*.conf"))),
                            key=os.path.basename)
    settings = _settings(paths)
    if not _yes(settings.get("KillUserProcesses")):
        return None
    if user in settings.get("KillExcludeUsers", "root").split():
        return None
    if os.path.exists(os.path.join(linger_dir, user)):
        return None
    return (f"systemd-logind kills {user}'s processes at logout (KillUserProcesses=yes in {conf} or its drop-ins) "
            f"and lingering is off: runs started from this login die when it ends. Fix: "
            f"`loginctl enable-linger {user}` and start runs with "
            f"`systemd-run --user --scope kidconsole run launch ...`, or set KillUserProcesses=no "
            f"(an administrator's change, then `systemctl restart systemd-logind`).")
