"""The server's bounds on work in flight (a hostile client must not exhaust it): audio refused by its header before
the body arrives, stalled and slow connections closed, bodies and bytes in flight bounded, the docs behind the
key, a loud warning when exposed without one. Every client here is a raw socket on 127.0.0.1 with a timeout."""

from __future__ import annotations

import base64
import socket
import struct
import time

import httpx
import pytest

LIMITS = ("--max-seconds", "3", "--max-body-mb", "0.5", "--client-timeout", "1", "--body-seconds", "3",
          "--max-inflight-mb", "1", "--max-concurrent", "4")


@pytest.fixture(scope="module")
def bounded(trained_run, tmp_path_factory, serve_process):
    s = serve_process(trained_run, tmp_path_factory.mktemp("bounds"), *LIMITS)
    yield s
    assert s.stop() == 0


def _wav_header(seconds: float, rate: int = 16000) -> bytes:
    """A 16-bit mono WAV header declaring ``seconds`` of audio (the data itself is not part of it)."""
    data = int(seconds * rate) * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data))


def _open(server, head: bytes = b"", timeout: float = 6.0) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    if head:
        conn.sendall(head)
    return conn


def _request_head(server, length: int | None, ctype: str = "audio/wav") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"POST /v1/transcribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Authorization: Bearer {server.KEY}\r\n{size}\r\n").encode()


def _answer(conn: socket.socket) -> bytes:
    """What the server sends until it closes the connection (b"" when it closed without a word); a socket timeout
    (the server kept the connection open) fails the test."""
    out = b""
    while chunk := conn.recv(65536):
        out += chunk
        if b"\r\n\r\n" in out and b'"detail"' in out:
            break
    conn.close()
    return out


def test_audio_longer_than_the_limit_is_refused_by_its_header_before_the_body_arrives(bounded):
    body_len = len(_wav_header(4)) + 4 * 16000 * 2      # 4 s declared, 3 s allowed; 128 KB, under the body limit
    for head in (_request_head(bounded, body_len) + _wav_header(4) + b"\0" * 100,
                 _request_head(bounded, None) + b"%x\r\n" % 144 + _wav_header(4) + b"\0" * 100 + b"\r\n"):
        t0 = time.monotonic()
        answer = _answer(_open(bounded, head))          # the rest of the body never comes
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"longer than the limit" in answer and time.monotonic() - t0 < 3


def test_stalled_and_slow_connections_are_closed_within_the_client_timeout(bounded):
    t0 = time.monotonic()
    silent = [_open(bounded) for _ in range(20)]                                     # connect, send nothing
    half_headers = [_open(bounded, b"POST /v1/transcribe HTTP/1.1\r\nHost: x\r\n") for _ in range(20)]
    stalled_body = _open(bounded, _request_head(bounded, 50_000) + b"RIFF")         # headers, then a pause
    for conn in silent + half_headers:
        assert _answer(conn) in (b"", b"HTTP/1.1 408")  # closed (with a 408 at most), not left open
    assert _answer(stalled_body).startswith(b"HTTP/1.1 408")
    assert time.monotonic() - t0 < 5
    # a body trickled a byte at a time, each within the idle timeout: the body's own deadline ends it
    slow = _open(bounded, _request_head(bounded, 50_000))
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 5.5:
            slow.sendall(b"\0")
            time.sleep(0.5)
    except OSError:  # the server answered and closed
        pass
    assert _answer(slow).startswith(b"HTTP/1.1 408")
    assert httpx.get(f"{bounded.url}/healthz").json()["status"] == "ok"


def test_bodies_in_flight_are_bounded_by_bytes_and_by_count(bounded):
    # 1 MB in flight allowed: two 0.4 MB bodies take 0.8; the third is turned away at once, before its body
    big = [_open(bounded, _request_head(bounded, 400_000) + b"RIFF") for _ in range(2)]
    time.sleep(0.3)
    third = _answer(_open(bounded, _request_head(bounded, 400_000) + b"RIFF"))
    assert third.startswith(b"HTTP/1.1 503") and b"retry-after" in third.lower() and b"in flight" in third, third[:300]
    for conn in big:
        conn.close()
    time.sleep(0.3)
    # 4 requests at once allowed: a fifth small one is turned away too
    small = [_open(bounded, _request_head(bounded, 1000) + b"RIFF") for _ in range(4)]
    time.sleep(0.3)
    fifth = _answer(_open(bounded, _request_head(bounded, 1000) + b"RIFF"))
    assert fifth.startswith(b"HTTP/1.1 503") and b"requests in flight" in fifth, fifth[:300]
    for conn in small:
        conn.close()
    time.sleep(0.3)  # the closed requests give back what they held: a request is served again
    r = httpx.post(f"{bounded.url}/v1/transcribe", content=b"hello", timeout=10,
                   headers={"Content-Type": "audio/wav", "Authorization": f"Bearer {bounded.KEY}"})
    assert r.status_code == 400 and "not audio" in r.json()["detail"]


def test_the_docs_need_the_key(bounded):
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(f"{bounded.url}{path}").status_code == 401, path
    assert httpx.get(f"{bounded.url}/docs", headers={"Authorization": f"Bearer {bounded.KEY}"}).status_code == 200
    basic = base64.b64encode(f"me:{bounded.KEY}".encode()).decode()  # what a browser sends after its prompt
    assert httpx.get(f"{bounded.url}/openapi.json", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    r = httpx.get(f"{bounded.url}/docs")
    assert r.headers["www-authenticate"].startswith("Basic")


def test_binding_beyond_loopback_without_a_key_warns_loudly():
    from trainers.serve import exposure_warning

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert exposure_warning(host, None) is None, host
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.org"):
        warning = exposure_warning(host, None)
        assert warning and "WARNING" in warning and host in warning and "--api-key-file" in warning, host
        assert exposure_warning(host, b"key") is None
