"""`run logs`: a run's stdout.log, and what it adds with -f (read by ``kidconsole.runs.logs``, bounded)."""

from __future__ import annotations

from kidconsole import rundir
from kidconsole.cli.run.common import resolve_run


def cmd_logs(args) -> int:
    from kidconsole.runs.logs import print_log

    return print_log(resolve_run(args) / rundir.STDOUT, args.lines, args.follow)
