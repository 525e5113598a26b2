"""The run directory's contract: records checked on write, the same types on read, the doc generated."""

import json
import re

import pytest

from kidconsole import rundir
from kidconsole.rundir import docs


def test_the_run_directory_doc_tables_are_generated_from_the_records():
    text = docs.DOC.read_text(encoding="utf-8")
    assert docs.render(text) == text, "docs/run-directory.md is stale: run `python -m kidconsole.rundir --write`"
    assert {name for _, name, _ in docs._BLOCK.findall(text)} == set(docs.tables())
    for key in ("trainer_module", "mixed_precision", "source_config", "launcher_pid", "stop_requested_at",
                "resumed_at", "resumed_from", "resumes", "killed_pids"):
        assert f"| `{key}` |" in text


def test_status_updates_are_checked_against_the_record(tmp_path):
    with pytest.raises(TypeError, match="no key stop_requsted_at"):
        rundir.update_status(tmp_path, stop_requsted_at=1.0)
    with pytest.raises(TypeError, match="pid: expected integer"):
        rundir.update_status(tmp_path, pid="123")
    with pytest.raises(TypeError, match="state: expected one of"):
        rundir.update_status(tmp_path, state=rundir.STALLED)  # derived by readers, never written
    assert not (tmp_path / rundir.STATUS).exists()
    status = rundir.update_status(tmp_path, state=rundir.RUNNING, gpus=[0, 1], create_time=float("nan"))
    assert status["create_time"] is None and rundir.read_status(tmp_path) == status


def test_events_are_checked_against_their_record_and_read_back_usable(tmp_path):
    writer = rundir.EventWriter(tmp_path / rundir.EVENTS)
    with pytest.raises(TypeError, match="no event kind"):
        writer.emit("trian", step=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'los'"):
        writer.emit(rundir.EV_TRAIN, step=1, los=0.5)
    with pytest.raises(TypeError, match="loss: expected number, got str"):
        writer.emit(rundir.EV_TRAIN, step=1, loss="0.5")
    with pytest.raises(TypeError, match="what: expected one of"):
        writer.emit(rundir.EV_WARNING, step=1, what="too_long")
    writer.emit(rundir.EV_TRAIN, step=1, loss=float("inf"), lr=1e-4)
    writer.emit(rundir.EV_END, step=1, state=rundir.FINISHED, exit_code=0, reason="done")
    writer.close()
    lines = [json.loads(x) for x in (tmp_path / rundir.EVENTS).read_text().splitlines()]
    assert [e["kind"] for e in lines] == [rundir.EV_TRAIN, rundir.EV_END]
    assert lines[0]["loss"] is None and set(lines[0]) == {"t", "kind"} | rundir.TrainEvent.KEYS
    assert all(rundir.event_problem(e) is None for e in lines)


@pytest.mark.parametrize("kind", sorted(rundir.EVENT_TYPES))
def test_every_event_kind_is_read_by_the_rule_it_is_written_by(kind):
    cls = rundir.EVENT_TYPES[kind]
    sample = {"integer": 3, "number": 0.5, "string": "x", "boolean": True, "list of strings": ["x"],
              "list of integers": [3], "object of numbers": {"5-6": 0.5}, "list of numbers": [0.5]}
    fields = {s.name: s.choices[0] if s.choices else sample[s.type.name] for s in cls.SPEC}
    written = rundir.records.event_dict(kind, 1.0, fields)
    assert rundir.event_problem(written) is None
    columns, bad = rundir.event_columns(kind, [written])
    assert bad == [] and set(columns) == {"t"} | cls.KEYS
    for s in cls.SPEC:
        wrong = {**written, s.name: {"not": s.type.name}}
        assert rundir.event_problem(wrong) and rundir.event_columns(kind, [written, wrong])[1] == [1]


def test_rows_are_checked_on_write_and_written_whole(tmp_path):
    path = tmp_path / rundir.PREDICTIONS
    row = {"id": "u1", "ref": "A", "hyp": "A", "age_range": [3.0, 5.0], "snr": float("nan")}
    rundir.write_rows(path, rundir.PredictionRow, [row])
    before = path.read_bytes()
    with pytest.raises(TypeError, match="lacks hyp"):
        rundir.write_rows(path, rundir.PredictionRow, [row, {"id": "u2", "ref": "A", "hyp": None}])
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [rundir.PREDICTIONS]
    assert json.loads(before) == {**dict.fromkeys(rundir.PredictionRow.KEYS), **row, "snr": None}
    assert rundir.usable_rows(rundir.DecodeRow, [{"id": "u", "ref": "A", "hyp": "A"}, {"id": "u", "ref": 3},
                                                 ["a list"]]) == ([{"id": "u", "ref": "A", "hyp": "A"}], 2)


def test_an_interrupted_atomic_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "summary.json"
    rundir.atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), rundir.atomic_writer(path) as fh:
        fh.write("half")
        raise RuntimeError("disk gone")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_writes_of_one_file_from_two_threads_never_lose_their_temp_file(tmp_path):
    # The console saves its "seen" states from a worker thread; two saves overlapped and shared one
    # temp name, so one rename found its temp file gone (FileNotFoundError in a console test).
    import threading

    path, errors = tmp_path / "seen.json", []
    start = threading.Barrier(4)

    def save(n):
        start.wait()
        try:
            for i in range(300):
                rundir.atomic_write_text(path, f"{n}:{i}")
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and re.fullmatch(r"\d:\d+", path.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["seen.json"]


def test_the_trainer_entry_points_are_named_once():
    from kidconsole.runs.launch import build_command

    assert rundir.TRAINER in rundir.TRAINER_MODULES and rundir.SCORER in rundir.TRAINER_MODULES
    assert build_command("/r")[build_command("/r").index("-m", 3) + 1] == rundir.TRAINER
