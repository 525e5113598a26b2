import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kidconsole.manifest import read_manifest, write_manifest
from trainers.batching import EVAL_MAX_PADDING, padding_fraction, plan_epoch, plan_random, plan_sorted, shard
from trainers.data import BatchStream, ctc_feasible, fixed_sample, load_rows, make_loader, output_frames, subset
from trainers.tokenizer import build_feature_extractor, build_processor

REPO = Path(__file__).resolve().parents[2]


def _stream(rows, batches, **kw):
    return BatchStream(rows, batches, feature_extractor=build_feature_extractor(), kernels=(10, 4, 4),
                       strides=(5, 4, 4), sample_rate=16000, max_seconds=kw.pop("max_seconds", 10.0), **kw)


def test_epoch_plan_covers_every_utterance_once_within_budget():
    durations = list(np.random.default_rng(0).uniform(0.5, 12.0, 3000))
    plan = plan_epoch(durations, seed=1, epoch=0, batch_seconds=60.0, max_utts=32, bucket=500)
    flat = sorted(i for b in plan for i in b)
    assert flat == list(range(3000))
    assert all(len(b) * max(durations[i] for i in b) <= 60.0 for b in plan)
    assert plan == plan_epoch(durations, seed=1, epoch=0, batch_seconds=60.0, max_utts=32, bucket=500)
    assert plan != plan_epoch(durations, seed=1, epoch=1, batch_seconds=60.0, max_utts=32, bucket=500)


def test_duration_batches_pad_less_than_a_tenth_and_less_than_random_batches():
    durations = list(np.random.default_rng(0).uniform(0.5, 12.0, 3000))
    plan = plan_epoch(durations, seed=1, epoch=0, batch_seconds=60.0, max_utts=32, bucket=500)
    mean_size = round(sum(map(len, plan)) / len(plan))
    assert padding_fraction(plan, durations) < 0.10
    assert padding_fraction(plan, durations) < padding_fraction(
        plan_random(durations, seed=1, epoch=0, batch_size=mean_size), durations)


def test_shards_have_equal_length_and_cover_the_plan():
    plan = [[i] for i in range(7)]
    parts = [shard(plan, r, 3) for r in range(3)]
    assert all(len(p) == 3 for p in parts)
    assert sorted(i for p in parts for b in p for i in b) == list(range(7))


def test_eval_batches_are_length_sorted():
    durations = [3.0, 1.0, 2.0, 5.0, 4.0]
    plan = plan_sorted(durations, batch_seconds=6.0, max_utts=8)
    flat = [i for b in plan for i in b]
    assert [durations[i] for i in flat] == sorted(durations)


def test_eval_batches_leave_little_padding_where_lengths_are_sparse():
    # the whole set fits the budget in one batch, which would pad the 2 s utterances to 15 s
    durations = [2.0, 15.0, 2.1, 8.0, 2.2, 8.2, 14.0]
    plan = plan_sorted(durations, batch_seconds=200.0, max_utts=32)
    for b in plan:
        longest = max(durations[i] for i in b)
        assert 1 - sum(durations[i] for i in b) / (len(b) * longest) <= EVAL_MAX_PADDING
    assert [[durations[i] for i in b] for b in plan] == [[2.0, 2.1, 2.2], [8.0, 8.2], [14.0, 15.0]]


def test_subsets_are_nested_and_the_validation_sample_fixed(tones):
    rows = load_rows(tones["train"])
    small, big = subset(rows, 0.2, 5), subset(rows, 0.6, 5)
    assert {r.id for r in small} < {r.id for r in big}
    assert [r.id for r in fixed_sample(rows, 5, 1)] == [r.id for r in fixed_sample(list(reversed(rows)), 5, 1)]


def test_ctc_feasibility_counts_blanks_between_repeats():
    assert output_frames(16000, (10, 4, 4), (5, 4, 4)) == 199
    assert ctc_feasible(3, [5, 6, 7]) and not ctc_feasible(3, [5, 5, 7])


def test_bad_samples_are_dropped_with_a_reason(tmp_path, tones):
    rows = load_rows(tones["train"])[:4]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really a wave file")
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(400, dtype=np.float32), 16000)
    rows[0].audio = str(tmp_path / "missing.wav")
    rows[1].audio = str(corrupt)
    rows[2].phones = "A QQ"
    rows[3].audio = str(short)
    good = load_rows(tones["train"])[4:6]
    batch = _stream(rows + good, [[0, 1, 2, 3, 4, 5]]).load(0)
    assert batch.ids == [g.id for g in good]
    reasons = dict(batch.bad)
    assert "missing.wav" in reasons[rows[0].id] and "corrupt.wav" in reasons[rows[1].id]
    assert "QQ" in reasons[rows[2].id] and "too short" in reasons[rows[3].id]
    assert batch.labels.shape[0] == 2 and batch.input_values.shape[0] == 2


def test_a_file_that_fails_while_decoding_is_dropped_and_the_batch_fits_the_rest(tmp_path, tones):
    rows = load_rows(tones["train"])[:3]
    longest = max(len(sf.read(r.audio)[0]) for r in rows[1:])
    # the header promises 3x the longest good file; half the frames are missing, so decoding fails
    whole = tmp_path / "whole.flac"
    sf.write(whole, np.random.default_rng(0).normal(0, 0.1, 3 * longest).astype(np.float32), 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    rows[0].audio = str(cut)
    batch = _stream(rows, [[0, 1, 2]]).load(0)
    assert batch.ids == [rows[1].id, rows[2].id]
    assert "cut.flac" in dict(batch.bad)[rows[0].id]
    assert batch.input_values.shape == (2, longest) and batch.input_values.is_contiguous()
    assert batch.lengths.max().item() == longest and batch.labels.shape[0] == 2


def test_audio_inside_a_zip_archive_loads_as_the_extracted_file(tmp_path, tones):
    import zipfile

    rows = load_rows(tones["train"])[:3]
    archive = tmp_path / "TS_1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for r in rows:
            zf.write(r.audio, f"wav/{Path(r.audio).name}")
    zipped = load_rows(tones["train"])[:3]
    for r in zipped:
        r.audio = f"{archive}::wav/{Path(r.audio).name}"
    zipped[2].audio = f"{archive}::wav/missing.wav"
    plain, inside = _stream(rows, [[0, 1, 2]]).load(0), _stream(zipped, [[0, 1, 2]]).load(0)
    assert inside.ids == [i for i in plain.ids if i != rows[2].id]
    assert "missing.wav" in dict(inside.bad)[rows[2].id] and "TS_1.zip" in dict(inside.bad)[rows[2].id]
    keep = [plain.ids.index(i) for i in inside.ids]
    width = int(inside.lengths.max())
    assert torch.equal(inside.input_values, plain.input_values[keep, :width])


def test_labels_match_the_tokenizer(tones):
    rows = load_rows(tones["train"])[:3]
    batch = _stream(rows, [[0, 1, 2]]).load(0)
    tok = build_processor().tokenizer
    for row_id, lab in zip(batch.ids, batch.labels):
        row = next(r for r in rows if r.id == row_id)
        assert lab[lab >= 0].tolist() == tok(row.phones).input_ids


def test_other_sample_rates_are_resampled(tmp_path, tones):
    row = load_rows(tones["train"])[0]
    wave, sr = sf.read(row.audio, dtype="float32")
    path = tmp_path / "8k.wav"
    sf.write(path, wave[::2], 8000)
    row.audio = str(path)
    batch = _stream([row], [[0]]).load(0)
    assert abs(batch.input_values.shape[1] - len(wave)) <= 2


def test_workers_return_batches_in_plan_order_from_any_start(tones):
    rows = load_rows(tones["train"])
    plan = plan_epoch([r.duration for r in rows], seed=0, epoch=0, batch_seconds=4.0, max_utts=8, bucket=16)
    expected = [[rows[i].id for i in b] for b in plan[3:]]
    got = [b.ids for b in make_loader(_stream(rows, plan, start=3), 2)]
    assert got == expected


@pytest.mark.slow
def test_two_processes_by_three_workers_see_each_utterance_once(tmp_path, tones):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(REPO / "tests" / "trainer" / "shard_probe.py"), str(tmp_path), str(tones["train"]), "3"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r.id for r in read_manifest(tones["train"])}
    seen = []
    for rank in (0, 1):
        out = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert [i for i, _ in out["seen"]] == list(range(len(out["plan"])))  # in plan order, none skipped
        seen += [u for _, ids in out["seen"] for u in ids]
    assert sorted(seen) == sorted(rows)
