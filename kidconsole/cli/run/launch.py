"""`run launch` (here, queued, over several machines, or as a Slurm job) and `run sweep`."""

from __future__ import annotations

from pathlib import Path

from kidconsole import rundir
from kidconsole.cli.run.common import gpu_indices, runs_roots, wants_queue
from kidconsole.palette import WARNING
from kidconsole.shown import markup


def cmd_launch(args) -> int:
    from rich.console import Console

    from kidconsole.runs.launch import launch_run
    from kidconsole.runs.logind import logind_warning

    console = Console()
    warning = logind_warning()
    if warning:
        console.print(f"[{WARNING}]warning:[/] {warning}")
    if wants_queue(args.gpus):
        from kidconsole.runs.queue import launch_queued

        if args.slurm or args.machines > 1:
            from kidconsole.errors import KidconsoleError

            raise KidconsoleError("--gpus auto waits in this server's queue: not with --slurm (Slurm queues the job) "
                                  "or --machines")

        [run_dir] = launch_queued([(args.config, args.set or [], args.name, {})], gpus_per_run=args.gpus_per_run,
                                  runs_root=args.runs_root or runs_roots(args)[0], trainer_module=args.trainer)
        _print_queued(console, [run_dir])
        return 0
    gpus = gpu_indices(args.gpus)
    if args.slurm:
        return cmd_launch_slurm(args, console)
    machines = None
    if args.machines > 1:
        from kidconsole.runs.launch import Machines

        machines = Machines(args.machines, args.machine_rank, args.main_addr, args.main_port)
    run_dir = launch_run(args.config, gpus=gpus, name=args.name, overrides=args.set or [],
                         runs_root=args.runs_root or runs_roots(args)[0], trainer_module=args.trainer, machines=machines)
    if machines is not None and args.machine_rank:
        console.print(f"machine {args.machine_rank} of {markup(run_dir.name)} started; it joins machine 0 at "
                      f"{args.main_addr}:{args.main_port}")
        return 0

    status = rundir.read_status_record(run_dir)
    where = f"GPU {','.join(map(str, gpus))}" if gpus else "CPU"
    console.print(f"launched [bold]{markup(run_dir.name)}[/] on {where}: pid {status.pid}, run directory {markup(run_dir)}")
    console.print(f"follow it: kidconsole run logs -f {markup(run_dir)}   "
                  f"stop it: kidconsole run stop {markup(run_dir)}")
    return 0


def _print_queued(console, run_dirs: list[Path]) -> None:
    for run_dir in run_dirs:
        status = rundir.read_status_record(run_dir)
        if status.state == rundir.QUEUED:
            console.print(f"queued [bold]{markup(run_dir.name)}[/] at #{status.queue_position}: waits for "
                          f"{markup(status.waiting_for)}")
        else:
            where = f"GPU {','.join(map(str, status.gpus))}" if status.gpus else "CPU"
            console.print(f"started [bold]{markup(run_dir.name)}[/] on {where}: pid {status.pid}")
    if run_dirs:
        console.print(f"the queue: kidconsole run queue ls --runs {markup(run_dirs[0].parent)}")


def cmd_launch_slurm(args, console) -> int:
    from kidconsole.runs.slurm import SlurmOptions, launch_slurm

    if args.gpus or args.machines > 1:
        from kidconsole.errors import KidconsoleError

        raise KidconsoleError("--slurm: Slurm places the run: use --nodes and --gpus-per-node, "
                              "not --gpus or --machines")
    opts = SlurmOptions(partition=args.partition, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                        time=args.time, account=args.account, grace=args.grace, extra=tuple(args.sbatch_arg))
    run_dir = launch_slurm(args.config, opts, name=args.name, overrides=args.set or [],
                           runs_root=args.runs_root or runs_roots(args)[0], trainer_module=args.trainer)
    status = rundir.read_status_record(run_dir)
    console.print(f"submitted [bold]{markup(run_dir.name)}[/]: Slurm job {status.slurm_job_id} ({args.nodes} node(s) x "
                  f"{args.gpus_per_node or 'CPU'}), batch script {markup(run_dir / rundir.JOB_SCRIPT)}")
    console.print(f"follow it: kidconsole run ls   stop it: kidconsole run stop {markup(run_dir)}")
    return 0


def cmd_sweep(args) -> int:
    from rich.console import Console

    from kidconsole.runs.sweep import launch_sweep

    if args.gpus and not wants_queue(args.gpus):
        from kidconsole.errors import KidconsoleError

        raise KidconsoleError("run sweep: --gpus takes only `auto` (every point waits in the queue)")
    sid, runs = launch_sweep(args.config, args.grid, overrides=args.set or [], name=args.name,
                             gpus_per_run=args.gpus_per_run, runs_root=args.runs_root or runs_roots(args)[0],
                             trainer_module=args.trainer)
    console = Console()
    console.print(f"sweep [bold]{markup(sid)}[/]: {len(runs)} runs")
    _print_queued(console, runs)
    return 0
