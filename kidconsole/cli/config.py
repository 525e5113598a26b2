"""``kidconsole config``: the shipped run configs and your own: list, show, new, check, diff."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from kidconsole.errors import KidconsoleError

HELP = "run configs: list the shipped ones, copy one into your project, check a file, compare two"
DESCRIPTION = ("Run configs. The shipped configs come with kidconsole; `config new NAME -o FILE` copies one into "
               "your project with the keys you must change marked `# EDIT`; `config check FILE` says what the "
               "launcher would refuse, each at its line.")


def visible(text: str) -> str:
    """Text from a file with its control characters written out (``\\x1b``): shown, never played by the
    terminal; line ends and tabs kept."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", lambda m: repr(m.group())[1:-1], text)


def cmd_list(args) -> int:
    from kidconsole.config_files import own, packaged, summary

    shipped = packaged()
    mine = own()
    width = max((len(n) for n in [*shipped, *map(str, mine)]), default=0)
    print("shipped (kidconsole config new NAME -o FILE):")
    for name, path in shipped.items():
        print(f"  {name:<{width}}  {summary(path)}")
    print("yours (./configs and ./):" if mine else "yours: none in ./configs or ./")
    for path in mine:
        print(visible(f"  {str(path):<{width}}  {summary(path)}"))
    return 0


def cmd_show(args) -> int:
    from kidconsole.config import MAX_CONFIG_BYTES
    from kidconsole.config_files import find

    path = find(args.name)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read(MAX_CONFIG_BYTES + 1)
    if len(text) > MAX_CONFIG_BYTES:
        raise KidconsoleError(f"{path}: over the {MAX_CONFIG_BYTES:,}-byte limit of a config file")
    text = visible(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_new(args) -> int:
    from kidconsole.config_files import write_new

    out = Path(args.output)
    made = write_new(args.name, out, args.set or [], force=args.force)
    if not made.edits:
        print(f"wrote {out}: ready to launch (`kidconsole run launch {out}`)")
        return 0
    print(f"wrote {out}: change the {len(made.edits)} key(s) marked EDIT, then `kidconsole config check {out}`:")
    for p in made.edits:
        print("  " + p.shown(str(out)))
    return 0


def cmd_check(args) -> int:
    from kidconsole.config_files import check

    found = check(args.file, args.set or [])
    for p in found:
        print(visible(p.shown(args.file)))
    if not found:
        print(f"{args.file}: ok")
    return 1 if found else 0


def cmd_diff(args) -> int:
    from kidconsole.config_files import config_diff, find, resolved, show_value

    a, b = find(args.a), find(args.b)
    diff = config_diff(resolved(a), resolved(b))
    if not diff:
        print(f"no differences (defaults filled in; the run name aside) between {a} and {b}")
        return 0
    rows = [(k, show_value(va), show_value(vb)) for k, va, vb in diff]
    wk = max(len("key"), *(len(r[0]) for r in rows))
    wa = max(len(args.a), *(len(r[1]) for r in rows))
    print(f"{'key':<{wk}}  {args.a:<{wa}}  {args.b}")
    for k, va, vb in rows:
        print(f"{k:<{wk}}  {va:<{wa}}  {vb}")
    return 0


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    sp = sub.add_parser("list", help="the shipped configs and yours (./configs, ./)")
    sp.set_defaults(func=cmd_list)
    sp = sub.add_parser("show", help="print a config as written, comments included")
    sp.add_argument("name", help="a shipped config's name (tiny_cpu), a file or a run directory")
    sp.set_defaults(func=cmd_show)
    sp = sub.add_parser("new", help="copy a config into your project, the keys you must change marked EDIT")
    sp.add_argument("name", help="a shipped config's name (`config list`) or a file")
    sp.add_argument("-o", "--output", required=True, metavar="FILE", help="the new config file")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="set a key in the copy (repeatable); relative paths as typed from here")
    sp.add_argument("--force", action="store_true", help="overwrite FILE")
    sp.set_defaults(func=cmd_new)
    sp = sub.add_parser("check", help="what the launcher would refuse in a config file, each at its line "
                        "(exit 1 if anything)")
    sp.add_argument("file")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="check with these overrides (repeatable)")
    sp.set_defaults(func=cmd_check)
    sp = sub.add_parser("diff", help="the keys where two configs differ, defaults filled in")
    sp.add_argument("a", help="a shipped config's name, a file or a run directory")
    sp.add_argument("b", help="the same")
    sp.set_defaults(func=cmd_diff)
