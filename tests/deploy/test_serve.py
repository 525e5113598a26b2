"""``kidconsole serve``: over a real socket (uvicorn on 127.0.0.1, a free port), the happy path, every kind of
malformed input (a 4xx with the reason, and the server lives on), concurrent clients, SIGTERM mid-request."""

from __future__ import annotations

import io
import signal
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory, serve_process):
    # a long batch wait: requests sent together surely share a pass, even on a busy machine
    s = serve_process(trained_run, tmp_path_factory.mktemp("serve"), "--max-seconds", "3", "--max-body-mb", "0.5",
               "--batch-wait-ms", "100")
    yield s
    assert s.stop() == 0


def _encode(wave: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def utterance(tones) -> tuple[np.ndarray, int]:
    from kidconsole.manifest import read_manifest

    wave, rate = sf.read(next(read_manifest(tones["test"])).audio, dtype="float32")
    return wave, rate


def test_raw_wav_flac_and_ogg_bodies_are_transcribed_with_the_fields_of_transcribe(server, utterance):
    wave, rate = utterance
    bodies = {"audio/wav": _encode(wave, rate, "WAV"), "audio/flac": _encode(np.stack([wave, wave], 1), rate, "FLAC"),
              "audio/ogg": _encode(wave, rate, "OGG", "VORBIS")}
    for ctype, body in bodies.items():
        r = httpx.post(f"{server.url}/v1/transcribe?id=u1", content=body, headers={**AUTH, "Content-Type": ctype})
        assert r.status_code == 200, r.text
        (res,) = r.json()["results"]
        assert res["id"] == "u1" and abs(res["duration"] - len(wave) / rate) < 0.01
        assert {"phones", "hangul", "confidence", "processing_seconds"} <= res.keys()
        assert len(res["confidence"]) == len(res["phones"].split())


def test_multipart_with_several_files_returns_one_result_each(server, utterance):
    wave, rate = utterance
    files = [("file", ("a.wav", _encode(wave, rate, "WAV"), "audio/wav")),
             ("file", ("b.flac", _encode(wave[: rate], rate, "FLAC"), "audio/flac"))]
    r = httpx.post(f"{server.url}/v1/transcribe", files=files, headers=AUTH)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["results"]] == ["a.wav", "b.flac"]


def test_model_health_and_docs_endpoints(server):
    m = httpx.get(f"{server.url}/v1/model", headers=AUTH).json()
    assert m["kind"] == "merged" and "A" in m["phones"] and "|" in m["phones"] and m["max_seconds"] == 3
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{server.url}/docs", headers=AUTH).status_code == 200
    assert "/v1/transcribe" in httpx.get(f"{server.url}/openapi.json", headers=AUTH).json()["paths"]


def test_concurrent_clients_are_served_and_share_forward_passes(server, utterance):
    wave, rate = utterance
    body = _encode(wave, rate, "WAV")
    results, errors = [], []

    def client():
        try:
            r = httpx.post(f"{server.url}/v1/transcribe", content=body, timeout=60,
                           headers={**AUTH, "Content-Type": "audio/wav"})
            results.append((r.status_code, r.json()["results"][0]))
        except Exception as e:  # collected: a thread's exception would vanish
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and [c for c, _ in results] == [200] * 8
    assert len({r["phones"] for _, r in results}) == 1  # batched or not, the same answer
    assert max(r["batch_size"] for _, r in results) > 1


def _wav_header_claiming(frames: int, rate: int = 16000) -> bytes:
    body = _encode(np.zeros(frames, dtype=np.float32), rate, "WAV", "PCM_16")
    return body[:44 + 2 * (frames // 3)]  # the header says `frames`, a third of the data is there


MALFORMED = {
    # name: (request kwargs, expected status, a word of the reason)
    "wrong content type": (dict(content=b"hello", headers={"Content-Type": "text/plain"}), 415, "not audio"),
    "no content type": (dict(content=b"RIFF"), 415, "not audio"),
    "json instead of audio": (dict(json={"audio": "x"}), 415, "application/json"),
    "not audio": (dict(content=b"hello world" * 10, headers={"Content-Type": "audio/wav"}), 400, "not audio"),
    "empty body": (dict(content=b"", headers={"Content-Type": "audio/wav"}), 400, "empty"),
    "truncated wav": (dict(content=_wav_header_claiming(16000), headers={"Content-Type": "audio/wav"}), 400,
                      "truncated"),
    "header only": (dict(content=_wav_header_claiming(16000)[:44], headers={"Content-Type": "audio/wav"}), 400,
                    "truncated"),
    "no samples": (dict(content=_encode(np.zeros(0, dtype=np.float32), 16000, "WAV"),
                        headers={"Content-Type": "audio/wav"}), 400, "empty audio"),
    "too short": (dict(content=_encode(np.zeros(40, dtype=np.float32), 16000, "WAV"),
                       headers={"Content-Type": "audio/wav"}), 400, "too short"),
    "non-finite samples": (dict(content=_encode(np.full(8000, np.nan, dtype=np.float32), 16000, "WAV", "FLOAT"),
                                headers={"Content-Type": "audio/wav"}), 400, "non-finite"),
    "longer than the limit": (dict(content=_encode(np.zeros(16000 * 4, dtype=np.float32), 16000, "WAV", "PCM_16"),
                                   headers={"Content-Type": "audio/wav"}), 413, "longer than the limit"),
    "body over the limit": (dict(content=b"\0" * (600 * 1024), headers={"Content-Type": "audio/wav"}), 413,
                            "over the limit"),
    "chunked body over the limit": (dict(content=iter([b"\0" * (64 * 1024)] * 10),
                                         headers={"Content-Type": "audio/wav"}), 413, "over the limit"),
    "truncated flac": (dict(content=_encode(np.zeros(16000, dtype=np.float32), 16000, "FLAC")[:60],
                            headers={"Content-Type": "audio/flac"}), 400, "not audio"),
    "multipart without boundary": (dict(content=b"x", headers={"Content-Type": "multipart/form-data"}), 400,
                                   "boundary"),
    "malformed multipart": (dict(content=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=b"}),
                            400, "malformed multipart"),
    "multipart without a file": (dict(data={"note": "no file here"}, files={}), 400, "no file part"),
    "multipart with a bad file": (dict(files=[("file", ("ok.txt", b"plain text", "text/plain"))]), 400, "ok.txt"),
    "missing API key": (dict(content=b"x", headers={"Content-Type": "audio/wav"}, auth=False), 401, "missing API key"),
    "wrong API key": (dict(content=b"x", headers={"Content-Type": "audio/wav", "Authorization": "Bearer nope"},
                           auth=False), 401, "wrong API key"),
    "wrong key in X-API-Key": (dict(content=b"x", headers={"Content-Type": "audio/wav", "X-API-Key": KEY + "x"},
                                    auth=False), 401, "wrong API key"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_input_gets_a_4xx_with_the_reason_and_the_server_lives_on(server, kind):
    kwargs, status, reason = MALFORMED[kind]
    kwargs = dict(kwargs)
    headers = dict(kwargs.pop("headers", {}))
    if kwargs.pop("auth", True):
        headers.update(AUTH)
    if kind == "multipart without a file":  # httpx sends a urlencoded form unless told it is multipart
        kwargs = {"files": {"note": (None, b"no file here")}}
    r = httpx.post(f"{server.url}/v1/transcribe", headers=headers, timeout=30, **kwargs)
    assert r.status_code == status, (kind, r.status_code, r.text)
    assert reason.lower() in r.json()["detail"].lower(), (kind, r.text)
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"


def test_the_model_endpoint_needs_the_key_too(server):
    assert httpx.get(f"{server.url}/v1/model").status_code == 401
    assert httpx.get(f"{server.url}/v1/transcribe", headers=AUTH).status_code == 405


def test_sigterm_lets_a_request_in_flight_finish(trained_run, tmp_path, utterance, serve_process):
    wave, rate = utterance
    body = _encode(wave, rate, "WAV")
    s = serve_process(trained_run, tmp_path)
    try:
        conn = socket.create_connection(("127.0.0.1", s.port), timeout=60)
        head = (f"POST /v1/transcribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
                f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        conn.sendall(head.encode() + body[: len(body) // 2])  # in flight: headers read, half the body sent
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        with pytest.raises(httpx.HTTPError):  # no new connections once stopping
            httpx.get(f"{s.url}/healthz", timeout=2)
        assert s.proc.poll() is None  # still finishing the request in flight
        conn.sendall(body[len(body) // 2:])
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
        conn.close()
        assert response.startswith(b"HTTP/1.1 200"), response[:300]
        assert b'"phones"' in response
        assert s.proc.wait(timeout=60) == 0  # a clean exit once the request was answered
        assert "Finished server process" in s.output()
    finally:
        s.stop()
