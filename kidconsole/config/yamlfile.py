"""Reading YAML, bounded: every config and YAML file of the project is parsed here, ``5e-4`` a number,
every failure an error naming the file.

Two bounds. A file over ``MAX_CONFIG_BYTES`` is refused before parsing (a 50 MB list parses for
minutes), and only a regular file is read (``kidconsole.bounded``). Aliases may not expand the document
by more than ``MAX_ALIAS_VALUES`` values: an alias is a reference, so 990 bytes of nested aliases (a
"billion laughs") parse in microseconds into a structure of a billion values that whatever walks it
next (validation, an error message's repr) takes minutes and gigabytes over. The expanded size is
counted on the composed node graph, each node once (memoised), before anything is built from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from kidconsole.bounded import FileTooLarge, read_capped
from kidconsole.errors import KidconsoleError

MAX_CONFIG_BYTES = 1 << 20  # a real config is a few kB; a 50 MB list would parse for minutes
MAX_ALIAS_VALUES = 10_000   # values aliases may add to a document (shared phase settings add tens)


class AliasBomb(yaml.YAMLError):
    """A document whose aliases expand past ``MAX_ALIAS_VALUES``, or refer to themselves."""


def expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(values in the document with every alias expanded, distinct nodes); ``AliasBomb`` for a node
    that contains itself. Iterative: a deeply nested document does not exhaust the stack."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            continue
        if key in size:
            continue
        if key in open_:
            raise AliasBomb("an alias refers to the mapping or list it is in (a recursive document)")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return size[id(root)], len(size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


class Loader(yaml.SafeLoader):
    """Safe YAML, aliases bounded; ``5e-4`` a float (YAML 1.1 reads it as a string, and a learning rate
    written so must be a number)."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            expanded, distinct = expanded_size(node)
            if expanded - distinct > MAX_ALIAS_VALUES:
                raise AliasBomb(f"its aliases expand it to {expanded:,} values from {distinct:,} written "
                                f"(at most {MAX_ALIAS_VALUES:,} more are allowed): refused unread")
        return node


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml(text: str) -> Any:
    """A YAML document (``AliasBomb``, a ``yaml.YAMLError``, when its aliases expand too far)."""
    return yaml.load(text, Loader=Loader)


def read_yaml(path: str | Path) -> Any:
    """A config file parsed; refused (``KidconsoleError`` naming the file) when it is unreadable, not a
    regular file, over MAX_CONFIG_BYTES, not UTF-8, not YAML, or an alias bomb."""
    path = Path(path)
    try:
        data = read_capped(path, MAX_CONFIG_BYTES)  # the size is checked before reading
    except FileTooLarge as e:
        raise KidconsoleError(f"{path}: {e.size:,} bytes, over the {MAX_CONFIG_BYTES:,}-byte (1 MiB) limit of a "
                              f"config file") from None
    except OSError as e:
        raise KidconsoleError(f"cannot read config {path}: {e.strerror}") from e
    try:
        return _yaml(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise KidconsoleError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except AliasBomb as e:
        raise KidconsoleError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise KidconsoleError(f"{path}: not valid YAML: {e}") from e
