"""``kidconsole g2p``: transcripts -> phones.

``kidconsole g2p "나는 부자가 되고 싶어"`` prints the phones;
``kidconsole g2p --file F`` prints one line of phones per input line, in order.
A line it cannot convert (g2pK cannot map it, or it is not UTF-8) gets an empty
line and a message on stderr (line number, text, reason); every other line is
still converted, and the exit code is 1 at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kidconsole.cli import add_progress_flag, show_progress
from kidconsole.errors import KidconsoleError


HELP = "convert Korean transcripts to phones"
DESCRIPTION = ("Convert Korean transcripts (AI Hub markup allowed) to phones: space-separated, ' | ' between words.")


def register(p: argparse.ArgumentParser) -> None:
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
    add_progress_flag(p)
    p.set_defaults(func=run)


def _read_lines(path: Path) -> list[tuple[str, str | None]]:
    """Each line of the file ('-': stdin), with the reason it cannot be converted when it is not UTF-8
    (shown with replacement characters): one bad line must not lose the others."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as e:
        raise KidconsoleError(f"{path}: {e.strerror or e}") from e
    lines = []
    for raw in data.splitlines():
        try:
            lines.append((raw.decode("utf-8"), None))
        except UnicodeDecodeError:
            lines.append((raw.decode("utf-8", errors="replace"), "not UTF-8"))
    return lines


def run(args: argparse.Namespace) -> int:
    from kidconsole.g2p import convert_many, phones_to_hangul
    from kidconsole.g2p.batch import print_failures
    from kidconsole.g2p.transcript import G2PResult, describe_failure

    if args.file is None and not args.text:
        raise KidconsoleError("g2p: give a transcript or --file F")
    lines = [(t, None) for t in args.text] + (_read_lines(args.file) if args.file is not None else [])
    cache = False if args.no_cache else args.cache
    converted = iter(convert_many([t for t, bad in lines if bad is None], cache=cache, processes=args.processes,
                                  progress=show_progress(args)))
    results = [next(converted) if bad is None else G2PResult(None, describe_failure(text, bad))
               for text, bad in lines]
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
