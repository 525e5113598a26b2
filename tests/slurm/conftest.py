"""A real single-node Slurm for the tests: munged, slurmctld and slurmd on a generated slurm.conf.

Everything lives in a temp dir (state, spool, logs, pid files) and on free ports; the daemons are
stopped by pid at the end of the session. Debian's packages: `slurm-wlm` and `munge` (`make test`
installs them when missing). The tests skip, saying so, only when the binaries are missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
MUNGE_DIR = Path("/run/munge")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(root: Path, host: str) -> str:
    cpus = os.cpu_count() or 1
    memory = int(psutil.virtual_memory().total / 2**20 * 0.8)
    return f"""ClusterName=kidtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=900
KillWait=10
DefMemPerCPU={max(256, memory // (4 * cpus))}
NodeName={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait(pred, timeout: float, what: str, log: Path | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"slurm test cluster: timed out waiting for {what}\n{tail}")


def _stop(pid: int | None) -> None:
    if pid is None:
        return
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    except psutil.TimeoutExpired:
        proc.kill()
    except psutil.Error:
        pass


@pytest.fixture(scope="session")
def slurm():
    """SLURM_CONF of a running single-node cluster (set in the environment for the session)."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"Slurm not installed ({', '.join(missing)} missing): `make test` installs slurm-wlm and munge")
    # not under pytest's temp root: another pytest session may prune that while the daemons use it
    root = Path(tempfile.mkdtemp(prefix="kidconsole-slurm-"))
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(_conf(root, host))
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)  # every client command needs it (else a DNS SRV lookup)
    started: list[int | None] = []
    try:
        munge_pid = _pid(MUNGE_DIR / "munged.pid")
        if munge_pid is None or not psutil.pid_exists(munge_pid):  # a munged already running is not ours to stop
            MUNGE_DIR.mkdir(parents=True, exist_ok=True)
            shutil.chown(MUNGE_DIR, "munge", "munge")
            subprocess.run(["munged", "--force"], check=True, capture_output=True, timeout=30)
            _wait(lambda: _pid(MUNGE_DIR / "munged.pid") is not None, 10, "munged")
            started.append(_pid(MUNGE_DIR / "munged.pid"))
        for daemon, pidfile in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            subprocess.run([daemon, "-c"], check=True, capture_output=True, timeout=30)  # daemonizes
            _wait(lambda: _pid(root / pidfile) is not None, 20, daemon, root / "log" / f"{daemon}.log")
            started.append(_pid(root / pidfile))

        def idle():
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
            return out.returncode == 0 and out.stdout.strip() in ("idle", "mixed")

        _wait(idle, 60, "the node to be idle", root / "log" / "slurmd.log")
        yield conf
    finally:
        for pid in reversed(started):
            _stop(pid)
        log = root / "log" / "slurmctld.log"
        if log.exists():  # what the controller decided, for a failed test's report
            print("slurmctld.log (tail):", *log.read_text(errors="replace").splitlines()[-30:], sep="\n")
        shutil.rmtree(root, ignore_errors=True)
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old


@pytest.fixture
def runs_root(slurm) -> Path:
    """A runs root for one test, beside the cluster's files and outside pytest's temp root: the processes of a
    run name their run directory, and a path under /tmp/pytest-* is fair game for any pytest's leftover reaper."""
    return Path(tempfile.mkdtemp(prefix="runs-", dir=slurm.parent))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A config file of a short real run on the tiny model and the tone corpus (seconds a step on the CPU)."""
    from trainers.tiny import build_tiny, tone_corpus

    root = tmp_path_factory.mktemp("tiny-run")
    model = build_tiny(root / "model")
    tones = tone_corpus(root / "tones", n_train=24, n_valid=6, n_test=4)

    def config(epochs: int = 2, **train) -> Path:
        cfg = {"name": "slurm", "seed": 3,
               "model": {"base": str(model), "start": "ctc", "freeze_feature_encoder": False},
               "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
               "data": {"train_manifest": str(tones["train"]), "valid_manifest": str(tones["valid"]),
                        "test_manifest": None, "max_seconds": 4.0, "batch_seconds": 4.0, "num_workers": 0,
                        "eval_batch_seconds": 40.0},
               "train": {"log_every": 1, "eval_every": 1000, "heartbeat_seconds": 1.0, "stop_timeout": 60.0,
                         **train},
               "phases": [{"name": "only", "epochs": epochs, "lr": 1.0e-3, "warmup": 1}]}
        path = root / f"run-{epochs}-{len(train)}.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return path

    return config
