"""Reading a YAML config file: bounded in size, ``5e-4`` a number, every failure an error naming the file."""

import os
import re
from pathlib import Path
from typing import Any

import yaml

from kidconsole.errors import KidconsoleError

MAX_CONFIG_BYTES = 1 << 20  # a real config is a few kB; a 50 MB list would parse for minutes


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``5e-4`` as a string; a learning rate written so must be a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def read_yaml(path: str | Path) -> Any:
    """A config file parsed (``5e-4`` a float), refused unreadable, over MAX_CONFIG_BYTES or not YAML."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size  # checked before reading: parsing 50 MB takes minutes
            data = f.read(MAX_CONFIG_BYTES + 1) if size <= MAX_CONFIG_BYTES else b""
        size = max(size, len(data))
    except OSError as e:
        raise KidconsoleError(f"cannot read config {path}: {e.strerror}") from e
    if size > MAX_CONFIG_BYTES:
        raise KidconsoleError(f"{path}: {size:,} bytes, over the {MAX_CONFIG_BYTES:,}-byte (1 MiB) limit of a "
                              f"config file")
    try:
        return _yaml(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise KidconsoleError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise KidconsoleError(f"{path}: not valid YAML: {e}") from e
