import json
import os
import time

import numpy as np

from kidconsole import rundir
from kidconsole.runs.discover import find_runs
from kidconsole.runs.logind import logind_warning
from kidconsole.runs.reader import RunReader
from kidconsole.runs.system import free_gpus, run_gpu_memory, run_process_usage, sample_gpus


def write_run(run_dir, n=2000, t0=1_700_000_000.0, garbage_every=0):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / rundir.EVENTS, "w") as fh:
        fh.write(json.dumps({"t": t0, "kind": "start", "step": 0, "total_steps": 2 * n}) + "\n")
        for i in range(1, n + 1):
            fh.write(json.dumps({"t": t0 + i, "kind": "train", "step": i, "phase": 1, "loss": 10.0 / i + (i == 777),
                                 "lr": 1e-4, "grad_norm": None, "samples_per_s": 50.0, "samples": 8 * i,
                                 "total_steps": 2 * n}) + "\n")
            if i % 100 == 0:
                fh.write(json.dumps({"t": t0 + i, "kind": "eval", "step": i, "loss": 5.0 / i, "per": 0.3 + (i == 500) * -0.2,
                                     "cer": 0.2, "wer": 0.5}) + "\n")
            if i % 300 == 0:
                fh.write(json.dumps({"t": t0 + i, "kind": "warning", "step": i, "what": "bad_sample",
                                     "count": i // 300, "message": "x"}) + "\n")
            if garbage_every and i % garbage_every == 0:
                fh.write("}{ not json\n")
    return run_dir


def test_reader_loads_newest_first_then_history_to_the_same_result(tmp_path):
    run = write_run(tmp_path / "r", garbage_every=250)
    whole = RunReader(run, initial_bytes=1 << 40)
    whole.poll()
    assert not whole.loading
    part = RunReader(run, initial_bytes=4000, backfill_bytes=9000)
    first = part.poll()
    assert part.loading and 0 < first < whole.n_events
    assert part.series["train/loss"].last == whole.series["train/loss"].last  # the chart's newest end is ready
    part.load_all()
    assert part.n_events == whole.n_events == 1 + 2000 + 20 + 6
    assert part.bad_lines == whole.bad_lines == 8
    for axis in ("step", "samples", "time"):
        for key, s in whole.series_by(axis).items():
            p = part.series_by(axis)[key]
            assert np.array_equal(s.x, p.x) and np.array_equal(s.y, p.y), (axis, key)
    assert [w["step"] for w in part.warnings] == [w["step"] for w in whole.warnings] == [300 * k for k in range(1, 7)]
    assert part.summary == whole.summary


def test_summary_holds_last_and_best_with_steps(tmp_path):
    r = RunReader(write_run(tmp_path / "r"))
    r.load_all()  # the first poll reads the newest part only
    s = r.summary
    assert s["step"] == 2000 and s["total_steps"] == 4000 and s["samples"] == 16000
    assert s["eval/per"]["best"] == 0.3 - 0.2 and s["eval/per"]["best_step"] == 500
    assert s["eval/per"]["last"] == 0.3 and s["eval/per"]["last_step"] == 2000
    assert s["train/loss"]["best_step"] == 2000
    assert s["warnings"] == 6 and s["skipped"] == 6
    assert s["eta_s"] == 2000.0  # one step a second, 2000 to go
    assert "train/grad_norm" not in r.series  # all null
    assert r.series_by("samples")["eval/per"].x[0] == 800
    assert r.series_by("time")["train/loss"].x[0] == 1_700_000_001


def test_poll_costs_only_new_events_and_truncation_never_counts_twice(tmp_path):
    run = write_run(tmp_path / "r", n=300)
    r = RunReader(run)
    r.poll()
    n0 = len(r.series["train/loss"])
    assert r.poll() == 0
    with open(run / rundir.EVENTS, "a") as fh:
        fh.write(json.dumps({"t": 1.7e9 + 301, "kind": "train", "step": 301, "loss": 0.01}) + "\n")
        fh.write('{"t": 1.7e9, "kind": "tra')
    assert r.poll() == 1 and len(r.series["train/loss"]) == n0 + 1
    write_run(run, n=50)  # rewritten: a new, shorter history
    r.poll()
    assert len(r.series["train/loss"]) == 50 and r.n_events == 1 + 50


def test_states_from_status_heartbeat_and_process(tmp_path):
    run = write_run(tmp_path / "r", n=10)
    r = RunReader(run)
    r.poll()
    now = time.time()
    assert r.state(now=now) == rundir.RUNNING  # no status: judged by events and the file's mtime
    assert r.state(now=now + 1000, stall_after=300) == rundir.STALLED
    rundir.update_status(run, state=rundir.EVALUATING, pid=os.getpid(), host=None)
    assert r.state() == rundir.EVALUATING
    rundir.update_status(run, state=rundir.RUNNING, pid=2 ** 22 + 12345)  # no such process
    assert r.state() == rundir.INTERRUPTED
    rundir.update_status(run, state=rundir.FAILED, exit_code=3)
    assert r.state() == rundir.FAILED


def test_decodes_log_config_and_checkpoints(tmp_path):
    run = write_run(tmp_path / "r", n=10)
    (run / rundir.DECODES).write_text(json.dumps({"step": 5, "id": "u1", "ref": "a b", "hyp": "a"}) + "\n")
    (run / rundir.STDOUT).write_text("one\ntwo\nprogress 10%\rprogress 90%\n")
    (run / rundir.CONFIG).write_text("name: r\nmodel: {base: /m/base}\nlora: {r: 8}\n"
                                     "data: {train_manifest: /m/t.jsonl, valid_manifest: /m/v.jsonl}\nphases: [{}]\n")
    for name, complete in (("step-00000010", True), ("step-00000020", False)):
        (run / "checkpoints" / name).mkdir(parents=True)
        if complete:
            (run / "checkpoints" / name / rundir.COMPLETE).touch()
    with open(run / rundir.EVENTS, "a") as fh:
        fh.write(json.dumps({"t": 1.8e9, "kind": "checkpoint", "step": 10, "name": "step-00000010", "best": True}) + "\n")
    r = RunReader(run)
    r.poll()
    assert [d["id"] for d in r.decodes()] == ["u1"]
    assert r.log_tail(2) == ["two", "progress 90%"]
    assert r.config.lora.r == 8 and r.config.data.valid_manifest == "/m/v.jsonl"
    ck = r.checkpoints()
    assert [(c["name"], c["step"], c["complete"], c["best"]) for c in ck] == [
        ("step-00000010", 10, True, True), ("step-00000020", 20, False, False)]


def test_find_runs_walks_roots_to_a_depth_and_sorts_by_start(tmp_path):
    for rel, started in (("a/late", 300), ("b/deep/early", 100), ("mid", 200), ("a/b/c/too/deep", 50)):
        rundir.update_status(tmp_path / rel, started_at=started)
    (tmp_path / "mid" / "checkpoints" / "x").mkdir(parents=True)
    rundir.update_status(tmp_path / "mid" / "checkpoints" / "x", started_at=1)  # inside a run: not a run
    runs = find_runs([tmp_path, tmp_path / "missing"])
    assert [p.name for p in runs] == ["early", "mid", "late"]
    assert find_runs([tmp_path / "mid"]) == [(tmp_path / "mid").resolve()]


def test_logind_warns_only_when_logout_kills_without_linger(tmp_path):
    conf = tmp_path / "logind.conf"
    dropins = tmp_path / "logind.conf.d"
    dropins.mkdir()
    systemd = tmp_path / "systemd"
    systemd.mkdir()
    linger = tmp_path / "linger"
    linger.mkdir()
    kw = dict(conf=str(conf), dropin_dirs=[str(dropins)], linger_dir=str(linger), systemd_dir=str(systemd))
    conf.write_text("[Login]\n#KillUserProcesses=yes\n")
    assert logind_warning("ann", **kw) is None  # the default is no
    (dropins / "10-kill.conf").write_text("[Login]\nKillUserProcesses=yes\n")
    warning = logind_warning("ann", **kw)
    assert "KillUserProcesses=yes" in warning and "loginctl enable-linger ann" in warning
    (linger / "ann").touch()
    assert logind_warning("ann", **kw) is None
    assert logind_warning("bob", **{**kw, "systemd_dir": str(tmp_path / "none")}) is None


def test_system_samplers_never_raise_without_gpus():
    gpus = sample_gpus()
    assert isinstance(gpus, list) and all(g.index >= 0 for g in gpus)
    assert isinstance(free_gpus(), list)
    assert isinstance(run_gpu_memory(os.getpid()), dict)
    run_process_usage(os.getpid())
    cpu, rss = run_process_usage(os.getpid())
    assert cpu >= 0 and rss > 10 << 20
    assert run_process_usage(2 ** 22 + 12345) == (0.0, 0)


UNUSABLE_LINES = [
    b'{"t":1.7e9,"kind":"train","step":5,"loss":' + b"7" * 400 + b"}",       # a 400-digit integer
    b'{"t":1.7e9,"kind":"train","step":6,"loss":"0.5"}',                      # a string where a number goes
    b'{"t":1.7e9,"kind":"train","step":7,"loss":[1,2]}',                      # a list
    b'{"t":1.7e9,"kind":"train","step":8,"loss":NaN}',                        # a NaN literal
    b'{"t":1.7e9,"kind":"train","step":9,"loss":{"a":1}}',                    # a nested object
    b'[{"t":1.7e9,"kind":"train","step":10,"loss":1}]',                      # a line that is a JSON array
    b'{"t":1.7e9,"kind":"train","step":11,"loss":1,"x":"\xff\xfe"}',          # invalid UTF-8
    b'{"t":' + b"9" * 400 + b',"kind":"heartbeat","step":12}',                # a 400-digit time
    b'{"t":1.7e9,"kind":"eval","step":13,"per":"low"}',
    b'{"t":1.7e9,"kind":"eval","step":14,"per":true}',
    b'{"t":1.7e9,"kind":"phase","phase":1,"name":["a"],"step":15}',
    b'{"t":1.7e9,"kind":"warning","step":16,"what":"bad_sample","count":"many"}',
    b'{"t":1.7e9,"kind":"checkpoint","step":17,"name":{"x":1},"best":true}',
    b'{"t":1.7e9,"kind":7,"step":18}',
    b'{"t":"yesterday","kind":"heartbeat","step":19}',
]


def test_every_unusable_line_is_skipped_and_counted_whatever_its_content(tmp_path):
    run = write_run(tmp_path / "r", n=20)
    good = RunReader(run)
    good.load_all()
    with open(run / rundir.EVENTS, "ab") as fh:
        fh.write(b"\n".join(UNUSABLE_LINES) + b"\n")
        fh.write(b'{"t":1700000021,"kind":"train","step":21,"loss":0.25}\n')
    for initial in (1 << 40, 300):  # read whole, and backfilled in slices
        r = RunReader(run, initial_bytes=initial, backfill_bytes=500)
        r.load_all()
        assert r.bad_lines == len(UNUSABLE_LINES)
        assert r.n_events == good.n_events + 1
        assert r.series["train/loss"].x.tolist() == list(range(1, 22))
        assert set(r.series) == set(good.series)  # the unusable evals drew nothing
        s = r.summary
        assert s["step"] == 21 and s["bad_lines"] == len(UNUSABLE_LINES) and s["phase_name"] is None
        assert r.warning_counts == good.warning_counts
        assert r.checkpoints() == []


def test_unusable_lines_arriving_live_are_counted_once(tmp_path):
    run = write_run(tmp_path / "r", n=5)
    r = RunReader(run)
    r.poll()
    for line in UNUSABLE_LINES:
        with open(run / rundir.EVENTS, "ab") as fh:
            fh.write(line + b"\n")
        r.poll()
    r.poll()
    assert r.bad_lines == len(UNUSABLE_LINES) and len(r.series["train/loss"]) == 5


def test_a_status_of_the_wrong_types_is_read_as_absent_keys(tmp_path):
    run = write_run(tmp_path / "r", n=5)
    (run / rundir.STATUS).write_text('{"name": "r", "state": "running", "pid": "12", "updated_at": '
                                     + "9" * 400 + ', "step": [3], "gpus": [0, "x"], "future_key": 1}')
    status = rundir.read_status(run)
    assert status == {"name": "r", "state": "running", "future_key": 1}
    r = RunReader(run)
    r.poll()
    assert r.summary["step"] == 5 and r.state() in (rundir.RUNNING, rundir.STALLED)


def _eval_run(run_dir, evals):
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [{"t": 1.0, "kind": "start", "step": 0, "total_steps": 1000},
             {"t": 2.0, "kind": "train", "step": 300, "loss": 1.0, "samples": 2400, "total_steps": 1000}]
    lines += [{"t": 3.0 + i, "kind": "eval", "per": 0.3, **e} for i, e in enumerate(evals)]
    (run_dir / rundir.EVENTS).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run_dir


def test_per_age_becomes_one_series_per_age_group_and_the_summary_has_the_newest(tmp_path):
    run = _eval_run(tmp_path / "r", [
        {"step": 100, "per_age": {"3-4": 0.5, "5-6": 0.4}, "per_snr": {"10-20 dB": 0.45}},
        {"step": 200, "per_age": {"3-4": 0.45, "7-9": 0.2}},
        {"step": 300, "per_age": {"3-4": 0.42, "5-6": None, "7-9": 0.19}},
    ])
    r = RunReader(run)
    r.poll()
    s = r.series
    assert s["eval/per_age/3-4"].x.tolist() == [100, 200, 300] and s["eval/per_age/3-4"].y.tolist() == [0.5, 0.45, 0.42]
    assert s["eval/per_age/5-6"].x.tolist() == [100]  # missing or null: no point
    assert s["eval/per_age/7-9"].y.tolist() == [0.2, 0.19]
    assert s["eval/per_snr/10-20 dB"].y.tolist() == [0.45]
    assert "eval/per_age" not in s and "eval/per_snr" not in s
    assert r.summary["per_age"] == {"3-4": 0.42, "5-6": None, "7-9": 0.19}


def test_eval_cost_projects_the_evaluations_left_from_the_gap_between_evaluations(tmp_path):
    run = _eval_run(tmp_path / "r", [{"step": 100, "eval_seconds": 30.0, "eval_share": 0.1},
                                     {"step": 300, "eval_seconds": 40.0, "eval_share": 0.25}])
    r = RunReader(run)
    r.poll()
    cost = r.summary["eval_cost"]
    # 700 steps left at one evaluation every 200 steps: 4 more evaluations of 40 s
    assert (cost.share, cost.seconds, cost.left) == (0.25, 40.0, 160.0)
    assert cost.too_costly() and not cost.too_costly(0.3)
    assert r.series["eval/eval_share"].y.tolist() == [0.1, 0.25]
    assert not r.summary["scoring_only"]
