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
import concurrent.futures
import contextlib
import hmac
import logging
import queue
import signal
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kidconsole.errors import KidconsoleError

RAW_TYPES = {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/flac", "audio/x-flac", "audio/ogg",
             "application/ogg", "audio/opus", "application/octet-stream"}
MULTIPART = "multipart/form-data"
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


class HTTPError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


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

def build_app(recogniser, settings: ServeSettings, decoder=None):
    from trainers.transcribe import Transcriber
    from trainers.waves import TooLong, load_wave

    tr = Transcriber(recogniser, batch_seconds=settings.batch_seconds, max_utterances=settings.max_batch,
                     decoder=decoder)
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = MicroBatcher(tr, settings)
        log.info("serving %s (%s) on %s", recogniser.path, recogniser.kind, recogniser.device)
        yield
        # uvicorn lets the requests in flight finish before this runs
        await run_in_threadpool(state["batcher"].close)

    app = FastAPI(title="kidconsole", summary="Korean phone recognition for children's speech", lifespan=lifespan)

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc: HTTPError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    def authorise(request) -> None:
        if settings.api_key is None:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
        if not given:
            raise HTTPError(401, "missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), settings.api_key):
            raise HTTPError(401, "wrong API key")

    async def read_body(request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HTTPError(400, f"Content-Length {declared!r} is not a number")
            if int(declared) > settings.max_body_bytes:
                raise HTTPError(413, f"body of {int(declared)} bytes, over the limit of {settings.max_body_bytes}")
        chunks, size = [], 0
        async for chunk in request.stream():  # chunked bodies declare no length: count what arrives
            size += len(chunk)
            if size > settings.max_body_bytes:
                raise HTTPError(413, f"body over the limit of {settings.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

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

    @app.post("/v1/transcribe", summary="Transcribe audio: the raw body (WAV, FLAC, OGG) or multipart files")
    async def transcribe(request: Request):
        authorise(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in RAW_TYPES and ctype != MULTIPART:
            raise HTTPError(415, f"content type {ctype or 'none'!r} is not audio: send {', '.join(sorted(RAW_TYPES))} "
                                 f"or {MULTIPART}")
        body = await read_body(request)
        if not body:
            raise HTTPError(400, "empty body: no audio")
        files = await files_of(request, body, ctype)
        waves = [await run_in_threadpool(decode_file, name, data) for name, data in files]
        t0 = time.perf_counter()
        futures = [asyncio.wrap_future(state["batcher"].submit(name, w.samples)) for (name, _), w in zip(files, waves)]
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
                "batch_seconds": settings.batch_seconds}

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

    from kidconsole.decoding import options_from_args
    from trainers.decode import build_decoder
    from trainers.quiet import quiet_libraries
    from trainers.recogniser import load_recogniser

    quiet_libraries()
    settings = ServeSettings(max_seconds=args.max_seconds, max_body_bytes=int(args.max_body_mb * 2 ** 20),
                             batch_seconds=args.batch_seconds, max_batch=args.max_batch,
                             batch_wait_ms=args.batch_wait_ms, api_key=read_api_key(args.api_key_file))
    if settings.batch_seconds < settings.max_seconds:
        raise KidconsoleError(f"--batch-seconds {settings.batch_seconds:g} must be at least --max-seconds "
                              f"{settings.max_seconds:g}, so that the longest file fits a pass")
    rec = load_recogniser(args.model, device=args.device)
    decoder = build_decoder(options_from_args(args), rec.vocab)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    config = uvicorn.Config(build_app(rec, settings, decoder), host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=args.graceful_seconds, access_log=args.log_level == "debug")
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
