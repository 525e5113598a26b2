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
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kidconsole.errors import KidconsoleError

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

    def submit(self, uid: str, samples) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self.q.put(_Job(uid, samples, fut))
        return fut

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
            try:
                results = self.tr.decode([j.uid for j in jobs], [j.samples for j in jobs])
            except Exception as e:  # a failed pass fails its requests, never the server
                log.exception("inference failed")
                for j in jobs:
                    j.future.set_exception(e)
                continue
            self.passes += 1
            self.utterances += len(jobs)
            for j, r in zip(jobs, results):
                r["batch_size"] = len(jobs)
                j.future.set_result(r)


# ---------- the app ----------

def build_app(recogniser, settings: ServeSettings):
    from trainers.transcribe import Transcriber
    from trainers.waves import TooLong, load_wave, wav_declared

    tr = Transcriber(recogniser, batch_seconds=settings.batch_seconds, max_utterances=settings.max_batch)
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = MicroBatcher(tr, settings)
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
            waves = []
            for name, data in files:
                lease.grow(int(decoded_bytes(name, data)))
                waves.append(await run_in_threadpool(decode_file, name, data))
            t0 = time.perf_counter()
            futures = [asyncio.wrap_future(state["batcher"].submit(name, w.samples))
                       for (name, _), w in zip(files, waves)]
            results = await asyncio.gather(*futures)
        return {"model": recogniser.kind, "seconds": round(time.perf_counter() - t0, 4),
                "results": [{**r, "source_sample_rate": w.source_rate, "source_channels": w.channels}
                            for r, w in zip(results, waves)]}

    @app.get("/healthz", summary="Liveness: the model is loaded and the worker runs")
    async def healthz():
        b = state.get("batcher")
        return {"status": "ok" if b is not None and b._thread.is_alive() else "starting",
                "passes": b.passes if b else 0, "utterances": b.utterances if b else 0}

    @app.get("/v1/model", summary="Which model is served: path, export kind, phone set, limits")
    async def model(request: Request):
        authorise(request)
        return {**recogniser.describe(), "max_seconds": settings.max_seconds,
                "max_body_bytes": settings.max_body_bytes, "max_batch": settings.max_batch,
                "batch_seconds": settings.batch_seconds, "max_concurrent": settings.max_concurrent,
                "max_inflight_bytes": settings.max_inflight_bytes}

    return app


def read_api_key(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise KidconsoleError(f"--api-key-file {path}: {e.strerror}") from e
    if not key:
        raise KidconsoleError(f"--api-key-file {path}: the file is empty")
    return key.encode("utf-8")


def main(args) -> int:
    """The ``kidconsole serve`` command (arguments parsed by kidconsole/cli/serve.py)."""
    import uvicorn

    from trainers.quiet import quiet_libraries
    from trainers.recogniser import load_recogniser

    quiet_libraries()
    settings = ServeSettings(max_seconds=args.max_seconds, max_body_bytes=int(args.max_body_mb * 2 ** 20),
                             batch_seconds=args.batch_seconds, max_batch=args.max_batch,
                             batch_wait_ms=args.batch_wait_ms, api_key=read_api_key(args.api_key_file),
                             max_concurrent=args.max_concurrent,
                             max_inflight_bytes=int(args.max_inflight_mb * 2 ** 20),
                             client_timeout=args.client_timeout, body_seconds=args.body_seconds)
    if settings.batch_seconds < settings.max_seconds:
        raise KidconsoleError(f"--batch-seconds {settings.batch_seconds:g} must be at least --max-seconds "
                              f"{settings.max_seconds:g}, so that the longest file fits a pass")
    rec = load_recogniser(args.model, device=args.device)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    warning = exposure_warning(args.host, settings.api_key)
    if warning:
        bar = "!" * 78
        print(f"{bar}\n{warning}\n{bar}", file=sys.stderr, flush=True)
    config = uvicorn.Config(build_app(rec, settings), host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=args.graceful_seconds, access_log=args.log_level == "debug",
                            http=_protocol_class(settings.client_timeout), timeout_keep_alive=5)
    _server_class()(config).run()
    return 0


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            # uvicorn re-raises SIGTERM after its graceful shutdown (the process then dies of it, status 143):
            # a stop that let every request finish is a clean exit, 0
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server
