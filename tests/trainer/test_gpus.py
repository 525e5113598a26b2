"""``kidconsole run launch --gpus``: the launched command and the environment each process gets."""

import json
from pathlib import Path

import pytest

from kidconsole import rundir
from kidconsole.cli import main

HERE = Path(__file__).parent


@pytest.mark.slow
def test_gpus_0_1_start_two_processes_that_see_gpus_0_and_1(tmp_path, make_config, monkeypatch, rd):
    run_config = make_config()
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # the probe stands in for trainers.train
    root = tmp_path / "runs"
    assert main(["run", "launch", str(run_config), "--gpus", "0,1", "--name", "two", "--runs-root", str(root),
                 "--trainer", "gpu_probe"]) == 0
    run = root / "two"
    rd.wait_for(lambda: rundir.read_status(run).get("state") in rundir.FINAL_STATES, 120, "the launch to end")
    status = rundir.read_status(run)
    assert status["gpus"] == [0, 1]
    cmd = status["command"]
    assert cmd[cmd.index("--num_processes") + 1] == "2" and "--multi_gpu" in cmd and "--cpu" not in cmd
    probes = [json.loads((run / f"probe.rank{r}.json").read_text()) for r in (0, 1)]
    assert [p["env"]["RANK"] for p in probes] == ["0", "1"]
    for p in probes:
        assert p["env"]["WORLD_SIZE"] == "2"
        assert p["env"]["CUDA_VISIBLE_DEVICES"] == "0,1" and p["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert p["argv"] == ["--config", str(run / rundir.CONFIG), "--run-dir", str(run)]
    assert status["state"] == rundir.FINISHED


@pytest.mark.slow
def test_one_gpu_is_one_process_and_no_gpu_the_cpu(tmp_path, make_config, monkeypatch, rd):
    run_config = make_config()
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    root = tmp_path / "runs"
    for name, gpus in (("one", ["--gpus", "1"]), ("cpu", [])):
        assert main(["run", "launch", str(run_config), *gpus, "--name", name, "--runs-root", str(root),
                     "--trainer", "gpu_probe"]) == 0
    for name, visible, cpu in (("one", "1", False), ("cpu", "", True)):
        run = root / name
        rd.wait_for(lambda: rundir.read_status(run).get("state") in rundir.FINAL_STATES, 120, "the launch to end")
        cmd = rundir.read_status(run)["command"]
        assert cmd[cmd.index("--num_processes") + 1] == "1" and "--multi_gpu" not in cmd
        assert ("--cpu" in cmd) is cpu
        (probe,) = [json.loads(p.read_text()) for p in run.glob("probe.rank*.json")]
        assert probe["env"]["CUDA_VISIBLE_DEVICES"] == visible
