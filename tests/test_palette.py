"""One colour per run state and per error kind, in the console and the CLI alike."""

from __future__ import annotations

import re
from pathlib import Path

from kidconsole import palette

PACKAGE = Path(__file__).resolve().parent.parent / "kidconsole"
HEX = re.compile(r"#[0-9a-fA-F]{6}\b")
NAMED = re.compile(r"[\"'\[](?:bold |dim )?(?:red|green|blue|yellow|cyan|magenta|white|black)[\]\"']")


def test_no_colour_is_written_outside_the_palette():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        # palette.py holds the colours; config/augment.py names noise spectra (white, pink, brown ...), not styles
        if path.name == "palette.py" or path.relative_to(PACKAGE).as_posix() == "config/augment.py":
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HEX.search(line) or NAMED.search(line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {line.strip()}")
    assert not found, "colours outside kidconsole/palette.py:\n" + "\n".join(found)


def test_an_error_kind_has_the_same_colour_in_the_console_and_the_cli_report():
    from kidconsole.metrics import align
    from kidconsole.report.render import alignment_text
    from kidconsole.tui.widgets.aligned_decode import aligned_lines

    ref, hyp = "H A N | G U G EO | M A L", "H E N | G U EO | M A L S"
    cli = alignment_text(align(ref.split(), hyp.split()))
    console = aligned_lines(ref, hyp, 80)[0]
    for text in (cli, console):
        styles = {str(span.style) for span in text.spans}
        assert {palette.OP_STYLES[op] for op in ("substitute", "delete", "insert")} <= styles


def test_a_stopped_run_is_grey_in_run_ls_as_on_its_card(tmp_path, capsys, monkeypatch):
    from rich.color import Color

    from kidconsole import rundir
    from kidconsole.cli import main

    states = rundir.LIVE_STATES + rundir.FINAL_STATES + (rundir.STALLED, rundir.INTERRUPTED)
    assert set(states) <= set(palette.STATE_STYLES)
    run = tmp_path / "runs" / "alpha"
    rundir.update_status(run, name="alpha", state=rundir.STOPPED, step=20, total_steps=40)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert main(["run", "ls", "--runs", str(tmp_path / "runs")]) == 0
    r, g, b = Color.parse(palette.STATE_STYLES["stopped"]).triplet
    assert f"38;2;{r};{g};{b}mstopped" in capsys.readouterr().out
