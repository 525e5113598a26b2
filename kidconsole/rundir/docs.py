"""docs/run-directory.md's tables, generated from the records (a test keeps the file current).

The doc holds each table between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``;
``python -m kidconsole.rundir --docs`` prints the tables, ``--write`` puts them into the doc.
"""

from __future__ import annotations

import re
from pathlib import Path

from kidconsole.rundir.records import (
    COMMON, EVENT_TYPES, DecodeRow, PredictionRow, QueueFile, Record, Spec, Status, TraceRow,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-directory.md"
_BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n).*?(<!-- end generated -->)", re.S)


def _row(*cells: str) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _field_table(specs: tuple[Spec, ...], with_by: bool = False) -> list[str]:
    head = ["key" if with_by else "field", "type"] + (["written by"] if with_by else []) + ["meaning"]
    lines = [_row(*head), "|" + "---|" * len(head)]
    for s in specs:
        meaning = s.meaning + (" (required)" if s.required else "")
        lines.append(_row(f"`{s.name}`", s.type.name, *([s.by] if with_by else []), meaning))
    return lines


def _rows_table(cls: type[Record]) -> str:
    return "\n".join([" ".join(cls.__doc__.split()), "", *_field_table(cls.SPEC)])


def tables() -> dict[str, str]:
    """Markdown of each generated block, by block name."""
    events = ["Every line:", "", *_field_table(COMMON), ""]
    for kind, cls in EVENT_TYPES.items():
        events += [f"`{kind}`: {cls.WHEN} ({cls.BY}).", "", *_field_table(cls.SPEC), ""]
    return {
        "status": "\n".join([" ".join(Status.__doc__.split()), "", *_field_table(Status.SPEC, with_by=True)]),
        "events": "\n".join(events).rstrip(),
        "decodes": _rows_table(DecodeRow),
        "predictions": _rows_table(PredictionRow),
        "trace": _rows_table(TraceRow),
        "queue": _rows_table(QueueFile),
    }


def render(doc: str) -> str:
    """``doc`` with every generated block replaced by its current table; KeyError for an unknown block."""
    current = tables()
    return _BLOCK.sub(lambda m: f"{m.group(1)}{current[m.group(2)]}\n{m.group(3)}", doc)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m kidconsole.rundir", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", action="store_true", help="print the generated tables")
    ap.add_argument("--write", action="store_true", help=f"rewrite the tables in {DOC}")
    args = ap.parse_args(argv)
    if args.write:
        DOC.write_text(render(DOC.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote {DOC}")
    if args.docs or not args.write:
        for name, table in tables().items():
            print(f"<!-- generated: {name} -->\n{table}\n<!-- end generated -->\n")
    return 0
