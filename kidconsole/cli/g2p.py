"""``kidconsole g2p``: transcripts -> phones.

``kidconsole g2p "나는 부자가 되고 싶어"`` prints the phones;
``kidconsole g2p --file F`` prints one line of phones per input line, in order
(an input it cannot convert gets an empty line and a message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kidconsole.errors import KidconsoleError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "g2p", help="convert Korean transcripts to phones",
        description="Convert Korean transcripts (AI Hub markup allowed) to phones: "
        "space-separated, ' | ' between words.")
    p.add_argument("text", nargs="*", help="transcript(s); each prints one line of phones")
    p.add_argument("--file", "-f", metavar="F", type=Path,
                   help="read one transcript per line ('-' for stdin)")
    p.add_argument("--hangul", action="store_true",
                   help="print the pronounced Hangul the phones compose to, after a tab")
    p.add_argument("--cache", metavar="PATH", type=Path,
                   help="G2P cache file (default $KIDCONSOLE_G2P_CACHE or "
                   "~/.cache/kidconsole/g2p-cache.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--processes", "-j", type=int, metavar="N",
                   help="worker processes for --file (default: all cores)")
    p.set_defaults(func=run)


def _read_lines(path: Path) -> list[str]:
    if str(path) == "-":
        return sys.stdin.read().splitlines()
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise KidconsoleError(f"{path}: {e}") from e


def run(args: argparse.Namespace) -> int:
    from kidconsole.g2p import convert_many, phones_to_hangul
    from kidconsole.g2p.batch import print_failures

    if args.file is None and not args.text:
        raise KidconsoleError("g2p: give a transcript or --file F")
    texts = list(args.text) + (_read_lines(args.file) if args.file is not None else [])
    cache = False if args.no_cache else args.cache
    results = convert_many(texts, cache=cache, processes=args.processes,
                           progress=sys.stderr.isatty())
    try:
        for result in results:
            line = result.phones or ""
            if args.hangul and result.phones:
                line += "\t" + phones_to_hangul(result.phones)
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `kidconsole g2p --file F | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    failed = print_failures(results)
    return 1 if failed else 0
