"""``/v1/stream``: live 16 kHz PCM over a WebSocket (a real socket on 127.0.0.1), partials and finals; each way a
stream can go wrong closes that stream alone; SIGTERM sends the open streams' finals."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from kidconsole.corpus.longrec import long_recording

CHUNK = 1600  # 100 ms


@pytest.fixture(scope="module")
def streaming(trained_run, tmp_path_factory, serve_process):
    s = serve_process(trained_run, tmp_path_factory.mktemp("stream"), "--stream-idle-seconds", "1.5",
                      "--max-streams", "3", "--partial-ms", "100")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def offline(trained_run):
    from trainers.recogniser import load_recogniser
    from trainers.transcribe import Transcriber

    return Transcriber(load_recogniser(trained_run))


class Client:
    """A stream: sends PCM chunks (as fast as asked), collects every message until the server closes."""

    def __init__(self, server, query: str = ""):
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(f"ws://127.0.0.1:{server.port}/v1/stream{query}", open_timeout=10,
                                                    additional_headers={"Authorization": f"Bearer {server.KEY}"}))
        self.messages: list[dict] = []
        self.closed: tuple[int, str] | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                self.messages.append(json.loads(self.ws.recv()))
        except ConnectionClosed as e:
            self.closed = (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")
        except OSError:
            self.closed = (None, "socket gone")

    def send(self, pcm: np.ndarray, pace: float = 0.0):
        for k in range(0, len(pcm), CHUNK):
            self.ws.send(pcm[k:k + CHUNK].tobytes())
            time.sleep(pace)

    def end(self):
        self.ws.send(json.dumps({"type": "end"}))

    def wait(self, kind: str, count: int = 1, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [m for m in self.messages if m["type"] == kind]
            if len(got) >= count or self.closed:
                return got
            time.sleep(0.02)
        raise AssertionError(f"no {count} {kind} in {timeout} s: {self.messages}")

    def wait_closed(self, timeout: float = 20) -> tuple[int, str]:
        self.thread.join(timeout)
        assert self.closed is not None, "the server kept the stream open"
        return self.closed

    def close(self):
        self._stack.close()


def _pcm(path) -> np.ndarray:
    wave, _ = sf.read(str(path), dtype="int16")
    return wave


def _utterance(tones, k: int = 0) -> np.ndarray:
    from kidconsole.manifest import read_manifest

    return _pcm(list(read_manifest(tones["test"]))[k].audio)


def test_a_streams_final_equals_the_offline_decode_of_the_same_audio(streaming, offline, tones):
    for k in range(3):
        pcm = _utterance(tones, k)
        c = Client(streaming, "?vad=0")  # the utterance is what the client sends until its end message
        assert c.wait("ready")[0]["sample_rate"] == 16000
        c.send(pcm)
        c.end()
        (final,) = c.wait("final")
        c.wait("end")
        c.close()
        whole = offline.decode(["x"], [pcm.astype(np.float32) / 32768])[0]
        assert final["phones"] == whole["phones"] and final["phones"]
        assert final["confidence"] == pytest.approx(whole["confidence"], abs=1e-4)
        assert (final["start"], final["end"], final["reason"]) == (0.0, round(len(pcm) / 16000, 3), "client")


def test_voice_activity_ends_utterances_and_partials_only_grow(streaming, speech_manifest, tmp_path):
    wav = tmp_path / "talk.wav"
    placed = long_recording(speech_manifest, wav, minutes=0.25, seed=4, gap=(1.0, 1.5))
    pcm = _pcm(wav)
    c = Client(streaming)
    c.send(pcm[: int(placed[-1].end * 16000) + 16000], pace=0.01)  # up to a second after the last utterance
    finals = c.wait("final", len(placed))
    c.close()
    assert [f["reason"] for f in finals] == ["vad"] * len(placed)
    for f, truth in zip(finals, placed):
        assert abs(f["start"] - truth.start) < 0.35 and abs(f["end"] - truth.end) < 0.5, (f, truth)
    for k in range(len(finals)):
        shown = [m["phones"].split() for m in c.messages if m["type"] == "partial" and m["utterance"] == k]
        assert all(b[:len(a)] == a and len(b) > len(a) for a, b in zip(shown, shown[1:]))  # no flicker


def test_a_stalled_stream_a_garbage_frame_and_a_vanished_client_each_close_that_stream_alone(streaming, tones):
    pcm = _utterance(tones)
    healthy = Client(streaming, "?vad=0")
    going = threading.Event()
    going.set()

    def talk():  # in real time, all along
        k = 0
        while going.is_set():
            healthy.send(pcm[k:k + CHUNK])
            k = (k + CHUNK) % len(pcm)
            time.sleep(0.1)
        healthy.end()

    talker = threading.Thread(target=talk)
    talker.start()
    stalled = Client(streaming, "?vad=0")
    stalled.send(pcm[:8000])  # half a second, then nothing
    garbage = Client(streaming, "?vad=0")
    garbage.send(pcm[:3200])
    garbage.ws.send(b"\x01\x02\x03")  # not whole 16-bit samples
    code, reason = garbage.wait_closed()
    assert code == 1003 and "even count" in reason
    # the slot the garbage freed: a client that sends text that is not JSON, then one that vanishes
    bad_text = Client(streaming, "?vad=0")
    bad_text.ws.send("hello")
    assert bad_text.wait_closed()[0] == 1003
    vanished = Client(streaming, "?vad=0")
    vanished.send(pcm[:3200])
    vanished.ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
    vanished.ws.socket.close()
    code, reason = stalled.wait_closed()
    assert code == 1008 and "stalled" in reason
    assert [m["reason"] for m in stalled.messages if m["type"] == "final"] == ["stalled"]  # what was heard
    time.sleep(0.5)
    going.clear()  # the healthy stream never noticed
    talker.join()
    (final,) = healthy.wait("final")
    assert final["phones"] and final["reason"] == "client" and final["end"] >= 1.5
    assert healthy.closed is None
    healthy.close()
    deadline = time.monotonic() + 10
    while httpx.get(f"{streaming.url}/healthz").json()["streams"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(f"{streaming.url}/healthz").json()["streams"] == 0


def test_streams_past_the_limit_and_without_the_key_are_refused(streaming):
    open_ = [Client(streaming) for _ in range(3)]
    for c in open_:
        c.wait("ready")
    extra = Client(streaming)
    code, reason = extra.wait_closed()
    assert code == 1013 and "--max-streams" in reason
    for c in open_:
        c.close()
    with pytest.raises(Exception):  # refused before the handshake completes
        with connect(f"ws://127.0.0.1:{streaming.port}/v1/stream", open_timeout=10) as ws:
            ws.recv(timeout=5)


def test_sigterm_sends_the_open_streams_finals_before_the_server_exits(trained_run, tmp_path, tones, serve_process):
    s = serve_process(trained_run, tmp_path)
    try:
        clients = [Client(s, "?vad=0") for _ in range(2)]
        for c in clients:
            c.send(_utterance(tones)[:16000])  # mid-utterance: no end message
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        for c in clients:
            assert c.wait_closed() == (1001, "the server is stopping")
            (final,) = [m for m in c.messages if m["type"] == "final"]
            assert final["reason"] == "shutdown" and final["end"] == 1.0 and final["phones"]
        assert s.proc.wait(timeout=60) == 0
    finally:
        s.stop()


def test_listen_streams_a_wav_to_a_model_or_a_server_and_prints_the_final(streaming, trained_run, offline, tones,
                                                                          tmp_path, capsys):
    from kidconsole.cli import main
    from kidconsole.manifest import read_manifest

    wav = list(read_manifest(tones["test"]))[1].audio
    whole = offline.decode(["x"], [_pcm(wav).astype(np.float32) / 32768])[0]
    key = tmp_path / "key"
    key.write_text(streaming.KEY)
    for target in (str(trained_run), streaming.url):
        extra = ["--api-key-file", str(key)] if target == streaming.url else []
        assert main(["listen", target, "--wav", wav, "--fast", "--no-vad", *extra]) == 0
        (line,) = [x for x in capsys.readouterr().out.splitlines() if x.endswith("(client)")]
        assert f"[{whole['phones']}]" in line and line.lstrip().startswith("0.00-")
    assert main(["listen", streaming.url, "--wav", wav, "--fast"]) == 2  # no key: refused, said why
    assert "403" in capsys.readouterr().err
