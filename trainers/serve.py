"""The HTTP server: a FastAPI app around one recogniser, its requests micro-batched on a worker thread.

``kidconsole serve MODEL`` (kidconsole/cli/serve.py) parses the arguments and
calls ``main``. Endpoints: ``POST /v1/transcribe`` (the audio as the raw body -
WAV, FLAC, OGG - or several files in a multipart form) returns, per file, the
fields of ``kidconsole transcribe``; ``GET /healthz``; ``GET /v1/model``; the
OpenAPI docs at ``/docs``.

Micro-batching: requests arriving within ``batch_wait_ms`` of the first one
waiting share one forward pass (bounded by ``batch_seconds`` of padded audio
and ``max_batch`` utterances); the pass runs on one worker thread, never on
the event loop, which keeps reading and decoding other requests meanwhile.
Bad input gets a 4xx naming the problem and never reaches the model: a body
over the size limit (413), a content type that is not audio (415), no or a
wrong API key (401), not audio, truncated, empty, non-finite or too short
audio (400), longer than ``max_seconds`` (413). On SIGTERM uvicorn stops
accepting connections, lets the requests in flight finish, then the worker
thread ends.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import copy
import dataclasses
import json
import hmac
import io
import ipaddress
import logging
import queue
import signal
import sys
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kidconsole.errors import KidconsoleError
from trainers.stream import StreamError, StreamSettings, pcm16

RAW_TYPES = {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/flac", "audio/x-flac", "audio/ogg",
             "application/ogg", "audio/opus", "application/octet-stream"}
MULTIPART = "multipart/form-data"
HEAD_BYTES = 1 << 16  # where a WAV header (with its chunks before the data) must end
log = logging.getLogger("kidconsole.serve")


@dataclass(frozen=True)
class ServeSettings:
    max_seconds: float = 30.0            # longest audio accepted per file
    max_body_bytes: int = 20 * 2 ** 20   # largest request body
    batch_seconds: float = 60.0          # padded audio seconds per forward pass
    max_batch: int = 16                  # utterances per forward pass (1: no micro-batching)
    batch_wait_ms: float = 5.0           # how long the first request waits for company
    max_files: int = 16                  # files per multipart request
    api_key: bytes | None = None
    max_concurrent: int = 32             # requests read, decoded or transcribed at once
    max_inflight_bytes: int = 256 * 2 ** 20  # their bodies and decoded audio together
    client_timeout: float = 10.0         # headers not complete, or a body paused, this long: closed / 408
    body_seconds: float = 60.0           # the longest a body may take to arrive
    chunk_seconds: float = 20.0          # longer audio: voice-activity segments, chunks with stride
    vad: bool = True
    max_streams: int = 16                # WebSocket streams open at once
    stream: StreamSettings = StreamSettings()


class HTTPError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def busy(detail: str) -> HTTPError:
    return HTTPError(503, f"busy: {detail}; retry later", {"Retry-After": "1"})


# ---------- bounds on work in flight ----------

class InFlight:
    """The requests in flight and the bytes they hold (body, then decoded audio), each under its limit: a request
    over either is turned away with 503 at once instead of queueing in memory. Used on the event loop only."""

    def __init__(self, max_requests: int, max_bytes: int):
        self.max_requests, self.max_bytes = max_requests, max_bytes
        self.requests = self.bytes = 0

    @contextlib.contextmanager
    def admit(self):
        if self.requests >= self.max_requests:
            raise busy(f"{self.requests} requests in flight, the limit (--max-concurrent)")
        lease = Lease(self)
        self.requests += 1
        try:
            yield lease
        finally:
            self.requests -= 1
            self.bytes -= lease.held


class Lease:
    def __init__(self, pool: InFlight):
        self.pool, self.held = pool, 0

    def grow(self, n: int) -> None:
        if self.pool.bytes + n > self.pool.max_bytes:
            raise busy(f"{self.pool.bytes / 2 ** 20:.1f} MB of bodies and audio in flight, {n / 2 ** 20:.1f} MB "
                       f"more would pass the limit of {self.pool.max_bytes / 2 ** 20:g} MB (--max-inflight-mb)")
        self.pool.bytes += n
        self.held += n


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, api_key: bytes | None) -> str | None:
    """The warning for a server reachable from other machines with no key, None when it is not."""
    if api_key is not None or _loopback(host):
        return None
    return (f"WARNING: serving on {host} without an API key: anyone who can reach this port can use the model and "
            f"its CPU or GPU, and read /docs. Give --api-key-file F, or bind 127.0.0.1 (the default).")


def _protocol_class(header_timeout: float):
    """uvicorn's HTTP/1.1 protocol, closing a connection that has not completed a request's headers within
    ``header_timeout`` seconds of opening or of its last response. uvicorn times out an idle connection only
    after a response, so a client that connects and sends nothing (or half a request line) held it for good."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self):
            super().on_response_complete()
            self._arm()

        def _arm(self):
            self.loop.call_later(header_timeout, self._expire, self.cycle)

        def _expire(self, cycle):
            t = self.transport
            # still no new request since armed (and not handed over to a WebSocket)
            if self.cycle is cycle and (cycle is None or cycle.response_complete) and not t.is_closing() \
                    and t.get_protocol() is self:
                t.close()

    return GuardedH11


# ---------- micro-batching ----------

@dataclass
class _Job:
    uid: str
    samples: object                      # mono float32 at the model's rate
    future: concurrent.futures.Future
    logits: bool = False                 # the job wants its logits (a chunk of long audio), not its phones


class MicroBatcher:
    """One worker thread: waits for a request, gathers what arrives within the wait (and fits the budget),
    runs one forward pass for all of them and resolves each request's future."""

    def __init__(self, transcriber, settings: ServeSettings):
        self.tr, self.s = transcriber, settings
        self.budget = settings.batch_seconds * transcriber.rec.sample_rate  # padded samples per pass
        self.q: queue.Queue = queue.Queue()
        self.passes = self.utterances = 0
        self._thread = threading.Thread(target=self._loop, name="inference", daemon=True)
        self._thread.start()

    def submit(self, uid: str, samples, logits: bool = False) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self.q.put(_Job(uid, samples, fut, logits))
        return fut

    def forward(self, uid: str):
        """Waves to their logits through the shared passes, for the long path (called on a worker thread)."""
        def run(waves):
            return [f.result() for f in [self.submit(uid, w, logits=True) for w in waves]]
        return run

    def close(self) -> None:
        self.q.put(None)
        self._thread.join()

    def _gather(self, first: _Job) -> tuple[list[_Job], _Job | None, bool]:
        """(the batch, a job that did not fit and starts the next one, whether the queue was closed)."""
        jobs, longest = [first], len(first.samples)
        deadline = time.monotonic() + self.s.batch_wait_ms / 1000
        while len(jobs) < self.s.max_batch:
            try:
                job = self.q.get(timeout=max(0.0, deadline - time.monotonic())) if time.monotonic() < deadline \
                    else self.q.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, None, True
            if (len(jobs) + 1) * max(longest, len(job.samples)) > self.budget:
                return jobs, job, False
            jobs.append(job)
            longest = max(longest, len(job.samples))
        return jobs, None, False

    def _loop(self) -> None:
        carry, closed = None, False
        while True:
            first = carry if carry is not None else (None if closed else self.q.get())
            if first is None:
                return
            jobs, carry, closed = self._gather(first)
            # a job whose caller went away (a closed stream, a dropped request) is cancelled: skipped; the others
            # can no longer be cancelled, so resolving them below cannot fail
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if not jobs:
                continue
            try:
                results, logits = self.tr.decode([j.uid for j in jobs], [j.samples for j in jobs], with_logits=True)
            except Exception as e:  # a failed pass fails its requests, never the server
                log.exception("inference failed")
                for j in jobs:
                    j.future.set_exception(e)
                continue
            self.passes += 1
            self.utterances += len(jobs)
            for j, r, x in zip(jobs, results, logits):
                r["batch_size"] = len(jobs)
                j.future.set_result(x if j.logits else r)


# ---------- a live stream ----------

class StreamHandler:
    """One WebSocket stream: frames read and fed to its session; the decodes it asks for go through the
    micro-batcher and their events are sent in order by a second task. At most one partial decode in flight
    (a busy server sends fewer partials); at most ``MAX_QUEUED`` decodes queued, then reading waits (the
    client's sends back up: back-pressure). A stalled stream, a garbage frame or a vanished client ends
    this stream alone; ``stop`` (SIGTERM) sends the open utterance's final and closes."""

    MAX_QUEUED = 8

    def __init__(self, ws, session, batcher: MicroBatcher, settings: StreamSettings):
        self.ws, self.session, self.batcher, self.s = ws, session, batcher, settings
        self.queue: asyncio.Queue = asyncio.Queue(self.MAX_QUEUED)
        self.partial_busy = False
        self.stop, self.done = asyncio.Event(), asyncio.Event()
        self.uid = f"stream-{id(self):x}"

    async def _enqueue(self, decodes) -> None:
        for d in decodes:
            short = len(d.wave) < self.session.min_samples
            fut = None if short else asyncio.wrap_future(self.batcher.submit(self.uid, d.wave))
            if d.kind == "partial":
                if fut is None:
                    continue
                self.partial_busy = True
            await self.queue.put((d, fut))

    async def _send_loop(self) -> None:
        while (item := await self.queue.get()) is not None:
            d, fut = item
            if isinstance(d, dict):  # a message of its own (the end message's answer)
                await self.ws.send_text(json.dumps(d))
                continue
            result = await fut if fut is not None else None
            if d.kind == "partial":
                self.partial_busy = False
                event = self.session.partial_event(d, result["phones"])
            else:
                event = self.session.final_event(d, result)
            if event is not None:
                await self.ws.send_text(json.dumps(event, ensure_ascii=False))

    async def run(self) -> None:
        from starlette.websockets import WebSocketDisconnect

        await self.ws.send_text(json.dumps({"type": "ready", "sample_rate": 16000, "format": "pcm_s16le",
                                            "vad": self.session.vad is not None}))
        sender = asyncio.create_task(self._send_loop())
        stop = asyncio.create_task(self.stop.wait())
        close, reason, vanished = 1000, "end of stream", False
        try:
            while True:
                recv = asyncio.create_task(self.ws.receive())
                done, _ = await asyncio.wait({recv, stop, sender}, timeout=self.s.idle_seconds,
                                             return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    if sender in done:  # sending failed: the client is gone
                        vanished = True
                        break
                    close, reason, why = ((1001, "the server is stopping", "shutdown") if stop in done else
                                          (1008, f"stalled: no frame for {self.s.idle_seconds:g} s", "stalled"))
                    await self._enqueue(self.session.end(why))
                    break
                msg = recv.result()
                if msg["type"] == "websocket.disconnect":
                    vanished = True  # closed or gone: nobody to send finals to
                    break
                if msg.get("bytes") is not None:
                    samples = pcm16(msg["bytes"])
                    await self._enqueue(self.session.feed(samples, partial_ok=not self.partial_busy))
                elif _end_message(msg.get("text")):
                    await self._enqueue(self.session.end())
                    await self.queue.put(({"type": "end", "utterances": self.session.utterances}, None))
        except StreamError as e:
            close, reason = 1003, str(e)
        except WebSocketDisconnect:
            vanished = True
        finally:
            stop.cancel()
        if vanished:
            sender.cancel()
            return
        try:
            await self.queue.put(None)
            await sender  # the finals asked for so far
            await self.ws.close(code=close, reason=reason[:120])
        except Exception:  # the client went away meanwhile: nothing more to tell it
            sender.cancel()


def _end_message(text: str | None) -> bool:
    try:
        message = json.loads(text or "")
    except ValueError:
        raise StreamError("a text frame that is not JSON: send {\"type\": \"end\"} or binary PCM") from None
    if not isinstance(message, dict) or message.get("type") != "end":
        raise StreamError("an unknown message: send {\"type\": \"end\"} or binary PCM")
    return True


# ---------- the app ----------

def build_app(recogniser, settings: ServeSettings, decoder=None):
    from trainers.transcribe import Transcriber
    from trainers.waves import TooLong, load_wave, wav_declared

    tr = Transcriber(recogniser, batch_seconds=settings.batch_seconds, max_utterances=settings.max_batch,
                     chunk_seconds=settings.chunk_seconds, vad=settings.vad, decoder=decoder)
    state: dict = {"streams": set(), "stopping": False}

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = MicroBatcher(tr, settings)
        if settings.stream.vad:
            from trainers.segment import load_vad

            vad = load_vad()

            def stream_vad():  # one ONNX session for all; each stream's copy holds its own recurrent state
                mine = copy.copy(vad)
                mine.reset_states()
                return mine
            state["vad"] = stream_vad
        app.state.drain = drain
        log.info("serving %s (%s) on %s", recogniser.path, recogniser.kind, recogniser.device)
        yield
        # uvicorn lets the requests in flight finish before this runs
        await run_in_threadpool(state["batcher"].close)

    inflight = InFlight(settings.max_concurrent, settings.max_inflight_bytes)
    # the docs are routes of ours, behind the key (FastAPI's own are open to anyone)
    app = FastAPI(title="kidconsole", summary="Korean phone recognition for children's speech", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc: HTTPError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    def given_key(request) -> str | None:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
        if scheme.lower() == "basic":  # a browser's prompt on /docs: any user name, the key as the password
            try:
                return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
        return request.headers.get("x-api-key")

    def authorise(request, challenge: str = "Bearer") -> None:
        if settings.api_key is None:
            return
        given = given_key(request)
        if not given:
            raise HTTPError(401, "missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                            {"WWW-Authenticate": challenge})
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), settings.api_key):
            raise HTTPError(401, "wrong API key", {"WWW-Authenticate": challenge})

    def authorise_docs(request) -> None:
        authorise(request, 'Basic realm="kidconsole", charset="UTF-8"')

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request):
        authorise_docs(request)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        from fastapi.openapi.docs import get_swagger_ui_html

        authorise_docs(request)
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request):
        from fastapi.openapi.docs import get_redoc_html

        authorise_docs(request)
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    def check_declared_length(head: bytes) -> None:
        """A WAV body is refused by its header, before the rest of it is read or any of it decoded."""
        declared = wav_declared(head)
        if declared and declared[1] and declared[0] > settings.max_seconds * declared[1]:
            raise HTTPError(413, f"audio of {declared[0] / declared[1]:.1f} s by its WAV header, longer than the "
                                 f"limit of {settings.max_seconds:g} s")

    async def read_body(request, lease: Lease, raw: bool) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HTTPError(400, f"Content-Length {declared!r} is not a number")
            if int(declared) > settings.max_body_bytes:
                raise HTTPError(413, f"body of {int(declared)} bytes, over the limit of {settings.max_body_bytes}")
            lease.grow(int(declared))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.body_seconds
        stream = request.stream().__aiter__()
        chunks, size, head_checked = [], 0, not raw
        while True:
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                chunk = await asyncio.wait_for(anext(stream), min(settings.client_timeout, left))
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise HTTPError(408, f"the body stalled for {settings.client_timeout:g} s" if left > settings.client_timeout
                                else f"the body took over {settings.body_seconds:g} s to arrive") from None
            size += len(chunk)  # chunked bodies declare no length: count what arrives
            if size > settings.max_body_bytes:
                raise HTTPError(413, f"body over the limit of {settings.max_body_bytes} bytes")
            if declared is None:
                lease.grow(len(chunk))
            chunks.append(chunk)
            if not head_checked and (size >= HEAD_BYTES or wav_declared(b"".join(chunks)) is not None):
                check_declared_length(b"".join(chunks)[:HEAD_BYTES])
                head_checked = True
        body = b"".join(chunks)
        if not head_checked:
            check_declared_length(body[:HEAD_BYTES])
        return body

    async def files_of(request, body: bytes, ctype: str) -> list[tuple[str, bytes]]:
        if ctype in RAW_TYPES:
            return [(request.query_params.get("id") or "audio", body)]
        from starlette.datastructures import UploadFile
        from starlette.formparsers import MultiPartException, MultiPartParser

        async def stream():
            yield body

        try:
            form = await MultiPartParser(request.headers, stream(), max_files=settings.max_files,
                                         max_part_size=settings.max_body_bytes).parse()
        except MultiPartException as e:
            raise HTTPError(400, f"malformed multipart body: {e.message}") from None
        files = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append((value.filename or name, await value.read()))
        if not files:
            raise HTTPError(400, "the multipart body holds no file part")
        names = [n for n, _ in files]
        if len(set(names)) < len(names):  # ids must tell the results apart
            files = [(f"{n}#{k}", data) for k, (n, data) in enumerate(files)]
        return files

    def decode_file(name: str, data: bytes):
        try:
            w = load_wave(data, recogniser.sample_rate, where=name, max_seconds=settings.max_seconds)
            tr.check(w.samples, name)
            return w
        except TooLong as e:
            raise HTTPError(413, str(e)) from None
        except KidconsoleError as e:
            raise HTTPError(400, str(e)) from None

    def decoded_bytes(name: str, data: bytes) -> int:
        """What decoding ``data`` will hold, from its header: the source's float samples and the model's."""
        try:
            info = sf.info(io.BytesIO(data))
        except (sf.LibsndfileError, RuntimeError, OSError):
            return 0  # not audio: load_wave says so, having decoded nothing
        return 4 * info.frames * (info.channels + max(1.0, recogniser.sample_rate / max(info.samplerate, 1)))

    def long_file(name: str, data: bytes) -> dict:
        try:
            return tr.transcribe_long(data, name, forward=state["batcher"].forward(name))
        except KidconsoleError as e:
            raise HTTPError(400, str(e)) from None

    def admit_file(lease: Lease, name: str, data: bytes):
        """Checks a file by its header and takes what decoding it will hold; the coroutine that decodes it."""
        try:
            info = sf.info(io.BytesIO(data))
        except (sf.LibsndfileError, RuntimeError, OSError):
            info = None  # not audio: load_wave says why
        if info is not None and info.duration > tr.chunk_seconds and info.frames > 0:
            if info.duration > settings.max_seconds:
                raise HTTPError(413, f"{name}: {info.duration:.1f} s of audio, longer than the limit of "
                                     f"{settings.max_seconds:g} s")
            lease.grow(int(8 * settings.batch_seconds * recogniser.sample_rate))  # a pass of chunks, not the whole

            async def long():
                r = await run_in_threadpool(long_file, name, data)
                return {"id": name, **r, "source_sample_rate": info.samplerate, "source_channels": info.channels}
            return long()
        lease.grow(int(decoded_bytes(name, data)))

        async def short():
            w = await run_in_threadpool(decode_file, name, data)
            r = await asyncio.wrap_future(state["batcher"].submit(name, w.samples))
            return {**r, "source_sample_rate": w.source_rate, "source_channels": w.channels}
        return short()

    @app.post("/v1/transcribe", summary="Transcribe audio: the raw body (WAV, FLAC, OGG) or multipart files")
    async def transcribe(request: Request):
        authorise(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in RAW_TYPES and ctype != MULTIPART:
            raise HTTPError(415, f"content type {ctype or 'none'!r} is not audio: send {', '.join(sorted(RAW_TYPES))} "
                                 f"or {MULTIPART}")
        with inflight.admit() as lease:
            body = await read_body(request, lease, raw=ctype in RAW_TYPES)
            if not body:
                raise HTTPError(400, "empty body: no audio")
            files = await files_of(request, body, ctype)
            decodes = []
            try:
                for name, data in files:
                    decodes.append(admit_file(lease, name, data))
            except HTTPError:
                for d in decodes:
                    d.close()  # never to be awaited
                raise
            t0 = time.perf_counter()
            results = await asyncio.gather(*decodes)
        return {"model": recogniser.kind, "seconds": round(time.perf_counter() - t0, 4), "results": results}

    async def drain(timeout: float) -> None:
        """On SIGTERM, before uvicorn closes the connections: every open stream sends its finals and closes."""
        state["stopping"] = True
        handlers = list(state["streams"])
        for h in handlers:
            h.stop.set()
        if handlers:
            await asyncio.wait([asyncio.ensure_future(h.done.wait()) for h in handlers], timeout=timeout)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket):
        """Live speech: 16 kHz 16-bit mono PCM in binary frames (10-1000 ms each), {"type": "end"} to end an
        utterance; partials and finals back as JSON (docs/deploy.md)."""
        from trainers.stream import StreamSession

        try:
            authorise(ws)
        except HTTPError as e:
            await ws.close(code=1008, reason=e.detail[:120])
            return
        if state["stopping"] or len(state["streams"]) >= settings.max_streams:
            await ws.accept()  # then closed with the reason (before the handshake a client sees a bare 403)
            await ws.close(code=1013, reason=f"busy: {len(state['streams'])} streams open, the limit (--max-streams)"
                           if not state["stopping"] else "the server is stopping")
            return
        vad = ws.query_params.get("vad", "1") != "0"
        params = settings.stream if vad or not settings.stream.vad else \
            dataclasses.replace(settings.stream, vad=False)
        session = StreamSession(params, state["vad"]() if params.vad else None, tr.min_samples,
                                tr.samples_per_frame())
        handler = StreamHandler(ws, session, state["batcher"], params)
        state["streams"].add(handler)
        try:
            await ws.accept()
            await handler.run()
        finally:
            state["streams"].discard(handler)
            handler.done.set()

    @app.get("/healthz", summary="Liveness: the model is loaded and the worker runs")
    async def healthz():
        b = state.get("batcher")
        return {"status": "ok" if b is not None and b._thread.is_alive() else "starting",
                "passes": b.passes if b else 0, "utterances": b.utterances if b else 0,
                "streams": len(state["streams"])}

    @app.get("/v1/model", summary="Which model is served: path, export kind, phone set, limits")
    async def model(request: Request):
        authorise(request)
        return {**recogniser.describe(), "max_seconds": settings.max_seconds,
                "max_body_bytes": settings.max_body_bytes, "max_batch": settings.max_batch,
                "batch_seconds": settings.batch_seconds, "max_concurrent": settings.max_concurrent,
                "max_inflight_bytes": settings.max_inflight_bytes}

    return app


def read_api_key(path: str | None) -> bytes | None:
    from kidconsole.job_arguments import read_key_file

    return None if path is None else read_key_file(path).encode("utf-8")


def server(args, log_level: str | None = None):
    """The uvicorn server for ``kidconsole serve``'s arguments, the model loaded, not started."""
    import uvicorn

    from kidconsole.decoding import options_from_args
    from trainers.decode import build_decoder
    from trainers.quiet import quiet_libraries
    from trainers.recogniser import load_recogniser

    quiet_libraries()
    stream = StreamSettings(partial_ms=args.partial_ms, max_utterance_seconds=args.chunk_seconds,
                            idle_seconds=args.stream_idle_seconds, vad=not args.no_vad)
    settings = ServeSettings(max_seconds=args.max_seconds, max_body_bytes=int(args.max_body_mb * 2 ** 20),
                             batch_seconds=args.batch_seconds, max_batch=args.max_batch,
                             batch_wait_ms=args.batch_wait_ms, api_key=read_api_key(args.api_key_file),
                             max_concurrent=args.max_concurrent,
                             max_inflight_bytes=int(args.max_inflight_mb * 2 ** 20),
                             client_timeout=args.client_timeout, body_seconds=args.body_seconds,
                             chunk_seconds=args.chunk_seconds, vad=not args.no_vad, max_streams=args.max_streams,
                             stream=stream)
    if settings.batch_seconds < settings.chunk_seconds:
        raise KidconsoleError(f"--batch-seconds {settings.batch_seconds:g} must be at least --chunk-seconds "
                              f"{settings.chunk_seconds:g}, so that the longest chunk fits a pass")
    rec = load_recogniser(args.model, device=args.device)
    warning = exposure_warning(args.host, settings.api_key)
    if warning:
        bar = "!" * 78
        print(f"{bar}\n{warning}\n{bar}", file=sys.stderr, flush=True)
    app = build_app(rec, settings, build_decoder(options_from_args(args), rec.vocab))
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=log_level or args.log_level,
                            timeout_graceful_shutdown=args.graceful_seconds, access_log=args.log_level == "debug",
                            http=_protocol_class(settings.client_timeout), timeout_keep_alive=5,
                            ws_max_size=2 * 16000 * 2, ws_per_message_deflate=False)  # a frame: at most 1 s of PCM
    return _server_class(app)(config)


def main(args) -> int:
    """The ``kidconsole serve`` command (arguments parsed by kidconsole/cli/serve.py)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    server(args).run()
    return 0


def serve_in_background(args):
    """A server for ``kidconsole serve``'s arguments in a thread of this process (``kidconsole listen MODEL``,
    on a loopback port): a function that stops it, once it accepts connections."""
    srv = server(args, log_level="warning")
    srv.in_thread = True
    thread = threading.Thread(target=srv.run, name="serve", daemon=True)
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            raise KidconsoleError(f"{args.model}: the server did not start")
        time.sleep(0.05)

    def stop():
        srv.should_exit = True
        thread.join(timeout=30)
    return stop


def _server_class(app):
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            # the open streams send their finals before uvicorn closes every connection (WebSockets with 1012)
            for server in self.servers:
                server.close()
            drain = getattr(app.state, "drain", None)
            if drain is not None:
                await drain(self.config.timeout_graceful_shutdown or 30)
            await super().shutdown(sockets)

        in_thread = False  # signals belong to the main thread: a server in another leaves them alone

        @contextlib.contextmanager
        def capture_signals(self):
            if self.in_thread:
                yield
                return
            # uvicorn re-raises SIGTERM after its graceful shutdown (the process then dies of it, status 143):
            # a stop that let every request finish is a clean exit, 0
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server
