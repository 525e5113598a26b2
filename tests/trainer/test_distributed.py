"""Two processes (gloo on CPU): the per-step sync carries the stop flags, so both stop at the same step."""

import json
import os
import signal

import pytest


@pytest.mark.slow
def test_two_processes_stop_together_at_one_step(make_config, tmp_path, rd):
    config = make_config(train__trace_batches=True, train__eval_every=1000, data__test_manifest=None,
                         data__num_workers=0, data__batch_seconds=4.0,
                         phases=[{"name": "only", "epochs": 50, "lr": 1.0e-3, "warmup": 1}])
    run = tmp_path / "run"
    proc = rd.launch(config, run, processes=2)
    rd.wait_for(lambda: any(e["step"] >= 3 for e in rd.events(run, "train")) or proc.poll() is not None,
                300, "step 3")
    assert proc.poll() is None, (run / "stdout.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
    rd.wait_for(lambda: rd.status(run).get("state") in ("stopped", "failed", "finished"), 90, "a final state")
    st = rd.status(run)
    assert st["state"] == "stopped" and st["exit_code"] == 0, (run / "stdout.log").read_text()[-3000:]
    stopped_at = st["step"]
    assert (run / "checkpoints" / f"step-{stopped_at:08d}" / "COMPLETE").exists()
    # one run of two ranks (not two lone "rank 0"s racing on the run directory): one writer of events
    assert [e["world_size"] for e in rd.events(run, "start")] == [2]
    assert [e["step"] for e in rd.events(run, "end")] == [stopped_at]
    # a rank that ran on alone would hang in the gradient all-reduce instead of saving with the other
    for rank in (0, 1):
        trace = [json.loads(line) for line in (run / f"trace.rank{rank}.jsonl").read_text().splitlines()]
        assert trace[-1]["step"] == stopped_at, (rank, st, (run / "stdout.log").read_text()[-2000:])
