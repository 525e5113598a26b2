"""`run logs`: a run's stdout.log, and what it adds with -f."""

from __future__ import annotations

import time

from kidconsole import rundir
from kidconsole.cli.run.common import resolve_run


def cmd_logs(args) -> int:
    from kidconsole.runs.reader import log_tail

    run_dir = resolve_run(args)
    for line in log_tail(run_dir / rundir.STDOUT, args.lines):
        print(line)
    if args.follow:
        path = run_dir / rundir.STDOUT
        offset = path.stat().st_size if path.exists() else 0
        while True:
            time.sleep(0.5)
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size < offset:
                offset = 0
            if size > offset:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(size - offset)
                offset = size
                print(data.decode("utf-8", errors="replace"), end="", flush=True)
    return 0
