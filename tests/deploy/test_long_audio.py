"""Audio of any length (trainers/segment.py): chunks with stride, voice-activity segments, flat memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kidconsole.corpus.longrec import long_recording, read_truth

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def transcriber(trained_run):
    from trainers.recogniser import load_recogniser
    from trainers.transcribe import Transcriber

    return Transcriber(load_recogniser(trained_run))


def test_chunk_windows_tile_the_segment_with_their_context_dropped():
    from trainers.segment import chunk_windows

    for start, end, chunk, stride in ((0, 1000, 200, 30), (160, 16160, 3200, 480), (0, 500, 200, 30), (5, 99, 200, 30)):
        windows = chunk_windows(start, end, chunk, stride, align=10)
        kept = [(w.start + w.left, w.end - w.right) for w in windows]
        assert kept[0][0] == start and kept[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(kept, kept[1:]))  # no gap, no overlap
        assert all(w.end - w.start <= 200 if chunk == 200 else True for w in windows)


def test_chunking_with_stride_equals_the_whole_utterance_decode_below_a_chunk(transcriber, tones):
    from kidconsole.manifest import read_manifest
    from trainers.segment import LongAudio

    tr = transcriber
    long = tr.long_decoder()
    for row in list(read_manifest(tones["test"]))[:4]:
        with LongAudio(row.audio, tr.rec.sample_rate) as audio:
            long.vad = False
            (segment,) = long.run(audio)
            whole = tr.decode([row.id], [audio.read(0, audio.frames)])[0]
        assert segment.phones == whole["phones"] and segment.phones
        assert segment.confidence == pytest.approx(whole["confidence"], abs=1e-4)
        assert (segment.start, segment.end) == (0.0, pytest.approx(whole["duration"], abs=1e-3))


def test_chunks_shorter_than_the_utterance_decode_it_nearly_alike(transcriber, tones):
    """Half-second chunks with 0.1 s of context either side: the phones of a 1-3 s tone utterance barely move."""
    from kidconsole.manifest import read_manifest
    from kidconsole.metrics import count_errors, phone_tokens
    from trainers.segment import LongAudio, LongDecoder

    tr = transcriber
    small = LongDecoder(tr.logits, tr.phones, rate=tr.rec.sample_rate, samples_per_frame=tr.samples_per_frame(),
                        chunk_seconds=0.5, stride_seconds=0.1, vad=False)
    refs, hyps = [], []
    for row in read_manifest(tones["test"]):
        with LongAudio(row.audio, tr.rec.sample_rate) as audio:
            refs.append(tr.decode([row.id], [audio.read(0, audio.frames)])[0]["phones"])
            hyps.append(" ".join(s.phones for s in small.run(audio)))
    assert count_errors([phone_tokens(r) for r in refs], [phone_tokens(h) for h in hyps]).rate < 0.15


MEASURE = """
import json, resource, sys
from kidconsole.cli import main
peaks = []
for wav, out in zip(sys.argv[1::2], sys.argv[2::2]):
    assert main(["transcribe", MODEL, wav, "-o", out, "--no-progress", "--batch-seconds", "20"]) == 0
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps(peaks))
"""


@pytest.mark.slow
def test_a_ten_minute_recording_transcribes_in_flat_memory_one_segment_per_utterance(trained_run, speech_manifest,
                                                                                    tmp_path):
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    long_recording(speech_manifest, short, minutes=1, seed=1)
    placed = long_recording(speech_manifest, long, minutes=10, seed=2)
    # one process transcribes 1 min, then 10 min, 20 s of audio a forward pass: its peak must not grow with the
    # length (decoding the 10 min whole would take gigabytes). Large blocks are mmapped, so that glibc's heap
    # fragmentation (30-100 MB here, whatever the length) does not hide what the code holds

    done = subprocess.run([sys.executable, "-c", MEASURE.replace("MODEL", repr(str(trained_run))), str(short),
                           str(tmp_path / "short-out.jsonl"), str(long), str(tmp_path / "long-out.jsonl")],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
                               "MALLOC_MMAP_THRESHOLD_": "65536"})
    assert done.returncode == 0, done.stderr[-3000:]
    after_short, after_long = json.loads(done.stdout.splitlines()[-1])
    assert after_long - after_short < 32 * 2 ** 20, (after_short, after_long)  # 10 min as float32: 38 MB
    (rec,) = [json.loads(line) for line in (tmp_path / "long-out.jsonl").read_text().splitlines()]
    assert rec["duration"] == 600.0 and rec["phones"]
    segments = rec["segments"]
    assert len(segments) == len(placed) == len(read_truth(long)) > 80
    for seg, truth in zip(segments, placed):  # each segment on its utterance, within the detector's padding
        assert abs(seg["start"] - truth.start) < 0.35 and abs(seg["end"] - truth.end) < 0.35, (seg, truth)
        assert len(seg["confidence"]) == len(seg["phones"].split())
    assert rec["phones"].count("|") >= len(segments) - 1  # a word boundary between segments at least


def test_no_vad_chunks_the_whole_recording_into_timed_pieces(trained_run, speech_manifest, tmp_path, capsys):
    from kidconsole.cli import main

    wav = tmp_path / "rec.wav"
    long_recording(speech_manifest, wav, minutes=0.5, seed=3)
    assert main(["transcribe", str(trained_run), str(wav), "--no-vad", "--chunk-seconds", "4", "--no-progress",
                 "--format", "text"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{wav}: ") and len(lines) > 2  # the recording, then its pieces
    times = [tuple(float(x) for x in line.split(" s:")[0].split("-")) for line in lines[1:]]
    assert times[0][0] == 0.0 and all(a[1] <= b[0] + 1e-6 for a, b in zip(times, times[1:])) and times[-1][1] <= 30


def test_the_server_takes_a_long_recording_as_transcribe_does(trained_run, speech_manifest, tmp_path, serve_process,
                                                               capsys):
    import httpx

    from kidconsole.cli import main

    wav = tmp_path / "rec.wav"
    long_recording(speech_manifest, wav, minutes=0.4, seed=5)
    assert main(["transcribe", str(trained_run), str(wav), "--chunk-seconds", "8", "--no-progress"]) == 0
    (offline,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    s = serve_process(trained_run, tmp_path, "--chunk-seconds", "8")
    try:
        r = httpx.post(f"{s.url}/v1/transcribe", content=wav.read_bytes(), timeout=120,
                       headers={"Content-Type": "audio/wav", "Authorization": f"Bearer {s.KEY}"})
        assert r.status_code == 200, r.text
        (served,) = r.json()["results"]
    finally:
        assert s.stop() == 0
    assert len(served["segments"]) == len(offline["segments"]) > 2
    assert served["phones"] == offline["phones"]  # batched with other chunks or not: the same decode
    for a, b in zip(served["segments"], offline["segments"]):
        assert (a["start"], a["end"], a["phones"]) == (b["start"], b["end"], b["phones"])
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-3)
