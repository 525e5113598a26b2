"""`kidconsole run ACTION`: runs from the command line, one module per action or pair of actions.

launch.py (launch, sweep), ls.py, logs.py, control.py (stop, resume), queue.py (cancel, queue), derived.py
(average, ensemble); common.py holds what they share. The arguments of every action are defined here.
"""

from __future__ import annotations

import argparse

from kidconsole import rundir
from kidconsole.cli import add_runs_flag
from kidconsole.cli.run.control import cmd_resume, cmd_stop
from kidconsole.cli.run.derived import cmd_average, cmd_ensemble, steps_list
from kidconsole.cli.run.launch import cmd_launch, cmd_sweep
from kidconsole.cli.run.logs import cmd_logs
from kidconsole.cli.run.mirror import cmd_mirror
from kidconsole.cli.run.ls import LS_SORTS, cmd_ls
from kidconsole.cli.run.queue import cmd_cancel, cmd_queue
from kidconsole.extras import needing


def _derived_flags(sp, default_name: str, beside: str) -> None:
    """Where a run made from other runs goes."""
    sp.add_argument("--name", help=f"the new run's name (default: {default_name})")
    sp.add_argument("--runs-root", help=f"where the new run goes (default: next to {beside})")
    add_runs_flag(sp)


HELP = "launch, list, follow, stop and resume training runs"
DESCRIPTION = "Training runs: detached from the terminal, one run directory each."


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="run_command", metavar="ACTION", required=True)


    sp = sub.add_parser("launch", help="start a run detached (survives logout and the console)")
    sp.add_argument("config", help="run config (YAML)")
    sp.add_argument("--gpus", nargs="+", metavar="N", help="GPU indices, e.g. 0 or 0,1 (several = one distributed "
                    "run); auto: wait in the queue for free GPUs (or a CPU slot); none: the CPU")
    sp.add_argument("--gpus-per-run", type=int, default=1, metavar="K", help="with --gpus auto: GPUs the run needs (1)")
    sp.add_argument("--name", help="run name (default: config name + time)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    sp.add_argument("--runs-root", help="where the run directory goes (default: the first runs root)")
    sp.add_argument("--trainer", default=rundir.TRAINER, help=argparse.SUPPRESS)
    g = sp.add_argument_group("one run over several machines (each runs this launch with its rank, the same --name, "
                              "and a run directory they share)")
    g.add_argument("--machines", type=int, default=1, metavar="M", help="machines of the run (1)")
    g.add_argument("--machine-rank", type=int, default=0, metavar="R", help="this machine, 0 to M-1 (0)")
    g.add_argument("--main-addr", default="127.0.0.1", metavar="IP", help="address of machine 0")
    g.add_argument("--main-port", type=int, default=29500, metavar="PORT", help="port on machine 0 (29500)")
    g = sp.add_argument_group("Slurm (writes RUN_DIR/job.sbatch and submits it; --gpus does not apply)")
    g.add_argument("--slurm", action="store_true", help="submit the run as a Slurm job")
    g.add_argument("--partition", metavar="P")
    g.add_argument("--nodes", type=int, default=1, metavar="N", help="nodes, one machine of the run each (1)")
    g.add_argument("--gpus-per-node", type=int, default=0, metavar="G", help="GPUs per node (0: the CPU)")
    g.add_argument("--time", metavar="T", help="time limit, as sbatch takes it (e.g. 2-00:00:00)")
    g.add_argument("--account", metavar="A")
    g.add_argument("--grace", type=int, default=120, metavar="S",
                   help="seconds before the time limit when the job is asked to checkpoint (120)")
    g.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                   help="one more sbatch option, e.g. --sbatch-arg=--qos=high (repeatable)")
    add_runs_flag(sp)
    sp.set_defaults(func=needing("train", "kidconsole run launch", cmd_launch))

    sp = sub.add_parser("sweep", help="queue one run per point of a grid of config keys (--gpus auto)",
                        description="Expand --grid KEY=V1,V2 (repeatable; every combination) into queued runs "
                        "sharing one sweep id.")
    sp.add_argument("config", help="run config (YAML)")
    sp.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                    help="a config key and its values, e.g. lora.r=16,32 (repeatable)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key in every run (repeatable)")
    sp.add_argument("--gpus", nargs="+", metavar="auto", help="auto (the default): each run waits for free GPUs")
    sp.add_argument("--gpus-per-run", type=int, default=1, metavar="K", help="GPUs each run needs (1)")
    sp.add_argument("--name", help="sweep name (default: the config's file name); runs are NAME-TIME-01, ...")
    sp.add_argument("--runs-root", help="where the run directories go (default: the first runs root)")
    sp.add_argument("--trainer", default=rundir.TRAINER, help=argparse.SUPPRESS)
    add_runs_flag(sp)
    sp.set_defaults(func=needing("train", "kidconsole run sweep", cmd_sweep))

    sp = sub.add_parser("cancel", help="take a queued run out of the queue (it ends stopped, never started)")
    sp.add_argument("run", help="run directory or name")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_cancel)

    sp = sub.add_parser("queue", help="the queue of runs waiting for GPUs: ls, move, slots",
                        description="The queue lives in the runs root (queue.json); every command here passes "
                        "over it first, starting what fits.")
    qsub = sp.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    qp = qsub.add_parser("ls", help="the queued runs in order, with what each waits for")
    qp.add_argument("--runs-root", help="the runs root whose queue (default: the first runs root)")
    add_runs_flag(qp)
    qp = qsub.add_parser("move", help="put a queued run at another place")
    qp.add_argument("run", help="run directory or name")
    qp.add_argument("position", type=int, help="1-based place (1: next to start)")
    qp.add_argument("--runs-root", help=argparse.SUPPRESS)
    add_runs_flag(qp)
    qp = qsub.add_parser("slots", help="how many CPU runs at once, and when a GPU counts as idle")
    qp.add_argument("--cpu", type=int, metavar="N", help="CPU slots (runs at once without GPUs; 1)")
    qp.add_argument("--idle-memory-mib", type=int, metavar="MIB", help="a GPU is idle below this used memory (1024)")
    qp.add_argument("--runs-root", help="the runs root whose queue (default: the first runs root)")
    add_runs_flag(qp)
    sp.set_defaults(func=cmd_queue)

    sp = sub.add_parser("ls", help="list runs with their state and progress")
    sp.add_argument("--stall-after", type=float, default=300.0, metavar="S",
                    help="seconds without a heartbeat before a live run shows as stalled (300)")
    out = sp.add_mutually_exclusive_group()
    out.add_argument("--wide", action="store_true", help="every column, however wide the terminal")
    out.add_argument("--json", action="store_true", help="the runs as JSON, for scripts (fractions and seconds)")
    sp.add_argument("--sort", choices=LS_SORTS, default=LS_SORTS[0],
                    help="start: oldest start first (default); name; best: lowest best PER first (a baseline: its "
                         "test PER), runs without one last")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_ls)

    sp = sub.add_parser("logs", help="print a run's log (stdout.log)")
    sp.add_argument("run", help="run directory or name")
    sp.add_argument("-n", "--lines", type=int, default=50)
    sp.add_argument("-f", "--follow", action="store_true", help="keep printing new output (Ctrl-C ends)")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_logs)

    sp = sub.add_parser("mirror", help="write a run's events into TensorBoard or MLflow (as report_to does live)",
                        description="Replays RUN's events.jsonl into TensorBoard event files (RUN/tensorboard) or an "
                        "MLflow run (the config's mlflow.tracking_uri, else mlflow.db in the runs root), with the "
                        "resolved config as hyperparameters and, in MLflow, the exports as artifacts.")
    sp.add_argument("run", help="run directory or name")
    sp.add_argument("--to", action="append", required=True, choices=rundir.MIRRORS,
                    help="where (repeatable)")
    sp.add_argument("--replace", action="store_true", help="make a mirror that exists again")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_mirror)

    sp = sub.add_parser("stop", help="stop a run: SIGTERM, wait for its checkpoint, then SIGKILL what is left")
    sp.add_argument("run", help="run directory or name")
    sp.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the checkpoint (120)")
    add_runs_flag(sp)
    sp.set_defaults(func=cmd_stop)

    sp = sub.add_parser("average", help="average checkpoints of a run's last phase into a new, scored run",
                        description="Averages the trainable weights (LoRA and head, or every trained weight) of "
                        "the chosen checkpoints of RUN's last phase, scores the test manifest and exports the model, "
                        "as a new run directory next to RUN (see docs/training.md, Checkpoint averaging).")
    sp.add_argument("run", help="run directory or name")
    how = sp.add_mutually_exclusive_group(required=True)
    how.add_argument("--best", type=int, metavar="N", help="the N checkpoints of the best validation metric")
    how.add_argument("--last", type=int, metavar="N", help="the N newest checkpoints")
    how.add_argument("--steps", type=steps_list, metavar="S1,S2,...", help="the checkpoints of these steps")
    sp.add_argument("--lora", choices=("deltas", "factors"), default="deltas",
                    help="deltas: the mean of the LoRA updates B·A, exactly (default); factors: mean A and mean B")
    _derived_flags(sp, "RUN-avg-best3 ...", "RUN")
    sp.set_defaults(func=needing("train", "kidconsole run average", cmd_average))

    sp = sub.add_parser("ensemble", help="score the test manifest with several models' posteriors averaged",
                        description="Decodes the test manifest from the mean per-frame posteriors of several "
                        "finished runs (their exported models), or of the N best checkpoints of one run, as a new "
                        "run directory. The members must share the phone set and feature extractor.")
    sp.add_argument("runs_given", nargs="+", metavar="RUN", help="run directories or names")
    sp.add_argument("--best", type=int, metavar="N", help="one RUN: its N best checkpoints of the last phase")
    _derived_flags(sp, "RUN-ens-best3, ens-RUN-2runs", "the first RUN")
    sp.set_defaults(func=needing("train", "kidconsole run ensemble", cmd_ensemble))

    sp = sub.add_parser("resume", help="relaunch a stopped, failed or interrupted run from its newest checkpoint "
                        "(a Slurm run: submit its job again with --resume)")
    sp.add_argument("run", help="run directory or name")
    sp.add_argument("--machine-rank", type=int, default=0, metavar="R",
                    help="a run over several machines: this machine (each machine resumes its share)")
    add_runs_flag(sp)
    sp.set_defaults(func=needing("train", "kidconsole run resume", cmd_resume))
