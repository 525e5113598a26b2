"""TensorBoard event files read live: what TensorBoard's own writer wrote comes back as TensorBoard's own
reader sees it; a half-written record is waited for, a damaged file is counted, never a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kidconsole.runs import tfevents
from kidconsole.runs.tfevents import EventFileTail, TensorBoardTail, event_files


def write_tb(logdir: Path, rows: list[tuple[str, int, float]], tensor_style: bool = False, t0: float = 1e9) -> Path:
    """Events written by TensorBoard's own writer; ``tensor_style``: scalars as TensorFlow 2 writes them."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(logdir))
    for tag, step, value in rows:
        if tensor_style:
            v = summary_pb2.Summary.Value(
                tag=tag, tensor=tensor_pb2.TensorProto(dtype=1, float_val=[value]),
                metadata=summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
                    plugin_name="scalars")))
        else:
            v = summary_pb2.Summary.Value(tag=tag, simple_value=value)
        w.add_event(event_pb2.Event(wall_time=t0 + step, step=step, summary=summary_pb2.Summary(value=[v])))
    w.close()
    files = list(Path(logdir).glob("events.out.tfevents.*"))
    assert len(files) == 1
    return files[0]


def tensorboard_reads(path: Path) -> list[tuple[str, int, float]]:
    """What TensorBoard's EventAccumulator makes of a folder's scalars."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tensorboard.util.tensor_util import make_ndarray

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    return sorted([(tag, e.step, e.value) for tag in tags["scalars"] for e in acc.Scalars(tag)]
                  + [(tag, e.step, make_ndarray(e.tensor_proto).item()) for tag in tags["tensors"]
                     for e in acc.Tensors(tag)])


ROWS = [("train/loss", s, 3.0 / s) for s in range(1, 41)] + [("eval/wer", s, 0.5 - s / 1000) for s in (10, 20, 30, 40)]


@pytest.mark.parametrize("tensor_style", [False, True], ids=["simple_value", "tensor"])
def test_what_tensorboards_writer_wrote_reads_back_as_tensorboard_reads_it(tmp_path, tensor_style):
    path = write_tb(tmp_path, ROWS, tensor_style)
    tail = EventFileTail(path)
    got = sorted((tag, s, v) for tag, (steps, values, _) in tail.read().items() for s, v in zip(steps, values))
    assert got == tensorboard_reads(tmp_path)
    assert len(got) == len(ROWS) and tail.corrupt is None and not tail.pending
    assert tail.read() == {}  # nothing new


def test_tensorboardx_scalars_reach_the_series_under_our_names(tmp_path):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "runs" / "Dec01_host")) as w:
        for step in range(1, 6):
            w.add_scalar("train/learning_rate", 1e-4 * step, step)
            w.add_scalar("train/loss", 1.0 / step, step)
    tb = TensorBoardTail(tmp_path)
    assert tb.poll() == 10
    series = tb.scalars.by["step"]
    assert set(series) == {"train/lr", "train/loss"} and tb.tags == {"train/learning_rate", "train/loss"}
    assert list(series["train/lr"].x) == [1, 2, 3, 4, 5]
    assert series["train/lr"].y[-1] == pytest.approx(5e-4, rel=1e-6)  # simple_value is a float32
    assert series["train/loss"].min_point() == pytest.approx((5.0, 0.2), rel=1e-6)


def test_a_half_written_record_is_waited_for_at_every_cut(tmp_path):
    whole = write_tb(tmp_path / "src", ROWS[:6]).read_bytes()
    grown = tmp_path / "grow" / "events.out.tfevents.1.host"
    grown.parent.mkdir()
    tail = EventFileTail(grown)
    grown.write_bytes(b"")
    seen = []
    for cut in range(1, len(whole) + 1):  # one byte appended at a time: every cut of every record
        with open(grown, "ab") as f:
            f.write(whole[cut - 1:cut])
        seen += [(tag, s) for tag, (steps, _, _) in tail.read().items() for s in steps]
        assert tail.corrupt is None, cut
    assert seen == [(t, s) for t, s, _ in ROWS[:6]]
    assert not tail.pending


def test_a_damaged_record_stops_its_file_counted_and_the_other_files_still_read(tmp_path):
    path = write_tb(tmp_path / "a", ROWS)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "events.out.tfevents.2.host").write_bytes(os.urandom(5000))  # not TFRecord at all
    write_tb(tmp_path / "c", [("eval/per", 5, 0.25)])
    tb = TensorBoardTail(tmp_path)
    tb.poll()
    assert len(tb.corrupt_files) == 2
    assert "fails its checksum" in tb.files[path].corrupt
    assert 0 < len(tb.scalars.by["step"]["train/loss"]) < 40  # the records before the damage
    assert list(tb.scalars.by["step"]["eval/per"].y) == [0.25]
    assert tb.poll() == 0 and len(tb.corrupt_files) == 2  # no change: not read again


def test_a_record_that_failed_is_read_once_the_file_changes_and_its_bytes_are_good(tmp_path):
    good = write_tb(tmp_path / "src", ROWS[:3]).read_bytes()
    path = tmp_path / "events.out.tfevents.1.host"
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # the last checksum not yet right (a slow filesystem)
    tail = EventFileTail(path)
    assert tail.read()["train/loss"][0] == [1, 2] and tail.corrupt
    path.write_bytes(good)
    os.utime(path, ns=(1, 1))
    assert tail.read()["train/loss"][0] == [3] and tail.corrupt is None


def test_records_over_the_limit_are_passed_over_unread_and_reads_are_bounded(tmp_path, monkeypatch):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path)) as w:
        w.add_text("notes", "x" * 5000, 1)
        for step in range(1, 201):
            w.add_scalar("loss", 1.0 / step, step)
    monkeypatch.setattr(tfevents, "MAX_RECORD", 1000)
    tb = TensorBoardTail(tmp_path)
    polls = 0
    while tb.poll(max_bytes=2000) or tb.pending:
        polls += 1
        assert polls < 100
    (tail,) = tb.files.values()
    assert tail.skipped == 1 and tail.corrupt is None and polls > 3
    assert list(tb.scalars.by["step"]["loss"].x) == list(range(1, 201))


def test_event_files_are_found_below_the_folder_oldest_writer_first(tmp_path):
    for sub, stamp in (("runs/Dec02_b", "1700000200"), ("runs/Dec01_a", "1700000100"), ("", "1700000300")):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / sub / f"events.out.tfevents.{stamp}.host.1.0").write_bytes(b"")
    (tmp_path / "a" / "b" / "c" / "d" / "e").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "d" / "e" / "events.out.tfevents.1.h").write_bytes(b"")  # too deep
    assert [p.name.split(".")[3] for p in event_files(tmp_path)] == ["1700000100", "1700000200", "1700000300"]
