"""`run mirror`: a run's events into TensorBoard or MLflow afterwards, as the trainer's report_to does live."""

from __future__ import annotations

import sys

from kidconsole.cli.run.common import resolve_run


def cmd_mirror(args) -> int:
    from kidconsole.mirror import mirror_run

    run_dir = resolve_run(args)
    report = mirror_run(run_dir, args.to, replace=args.replace, warn=lambda msg: print(msg, file=sys.stderr))
    for target, where in report.where.items():
        failed = report.failures.get(target, 0)
        print(f"{run_dir.name}: {report.events:,} events mirrored to {target}: {where}"
              + (f" ({failed} writes failed; first: {report.first_error[target]})" if failed else ""))
    return 1 if report.failures else 0
