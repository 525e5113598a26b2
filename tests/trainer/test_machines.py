"""One run over two machines: two launches on this host (machine ranks 0 and 1 on 127.0.0.1, gloo)."""

import psutil
import pytest

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.runs.life import resume as resume_run, stop as stop_run
from kidconsole.runs.launch import Machines, free_port, launch_run


def _config(make_config):
    return make_config(train__eval_every=1000, data__test_manifest=None, data__num_workers=0,
                       data__batch_seconds=4.0, phases=[{"name": "only", "epochs": 6, "lr": 1.0e-3, "warmup": 1}])


def _gone(run, file):
    pid = rundir.read_status(run, file=file).get("pid")
    return pid is None or not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_two_machines_form_one_run_stop_together_and_resume(make_config, tmp_path, rd, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = _config(make_config)
    # the same run on one machine with two processes: the reference the two machines must match
    whole = tmp_path / "whole"
    assert rd.launch(config, whole, processes=2).wait(timeout=600) == 0
    loss = {e["step"]: e["loss"] for e in rd.events(whole, "train")}

    root, node1 = tmp_path / "runs", rundir.node_status_name(1)

    def launch(rank, port):
        return launch_run(config, name="two", runs_root=root, machines=Machines(2, rank, "127.0.0.1", port))

    port = free_port()
    run = launch(0, port)
    assert launch(1, port) == run
    rd.wait_for(lambda: any(e["step"] >= 3 for e in rd.events(run, "train")) or rd.status(run).get("state") == "failed",
                300, "step 3")
    assert rd.status(run)["machines"] == 2 and rd.status(run)["machine_rank"] == 0
    assert stop_run(run, timeout=120).state == "stopped", (run / "stdout.log").read_text()[-3000:]
    # the stop reached machine 1 through the step's collective: it ended too, and saved with machine 0
    rd.wait_for(lambda: _gone(run, node1), 60, "machine 1 to end")
    assert rundir.read_status(run, file=node1)["exit_code"] == 0
    stopped_at = rd.status(run)["step"]
    assert [p.name for p in rundir.complete_checkpoints(run / "checkpoints")] == [f"step-{stopped_at:08d}"]
    assert [e["world_size"] for e in rd.events(run, "start")] == [2]  # one run of two ranks, one writer
    assert not (run / rundir.node_status_name(0)).exists()

    port = free_port()
    rundir.update_status(run, main_port=port)  # machine 0's rendezvous port may be taken since
    resume_run(run)
    resume_run(run, machine_rank=1)
    rd.wait_for(lambda: rd.status(run).get("state") in ("finished", "failed") and _gone(run, node1), 600,
                "the resumed run to end")
    assert rd.status(run)["state"] == "finished", (run / "stdout.log").read_text()[-3000:]
    assert rd.events(run, "start")[-1]["resumed_from"].endswith(f"step-{stopped_at:08d}")
    two = {e["step"]: e["loss"] for e in rd.events(run, "train")}
    assert sorted(two) == sorted(loss)
    assert all(abs(two[s] - loss[s]) < 1e-3 * max(1.0, abs(loss[s])) for s in loss), (two, loss)


def test_a_second_machine_with_another_config_is_refused(make_config, tmp_path):
    config = _config(make_config)
    launch = dict(name="two", runs_root=tmp_path / "runs", machines=Machines(2, 1, "127.0.0.1", 1))
    (tmp_path / "runs" / "two").mkdir(parents=True)
    (tmp_path / "runs" / "two" / rundir.CONFIG).write_text("name: other\n", encoding="utf-8")
    with pytest.raises(KidconsoleError, match="different config"):
        launch_run(config, **launch)
    with pytest.raises(KidconsoleError, match="same --name"):
        launch_run(config, runs_root=tmp_path / "runs", machines=Machines(2, 0, "127.0.0.1", 1))
