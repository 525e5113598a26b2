"""``kidconsole serve MODEL``: the model behind an HTTP API (FastAPI + uvicorn), requests micro-batched."""

from __future__ import annotations

import argparse

from kidconsole.decoding import add_decoder_arguments
from kidconsole.extras import needing
from kidconsole.job_arguments import add_long_audio_flags, add_model_arguments


HELP = "serve a model over HTTP: POST /v1/transcribe, WebSocket /v1/stream, GET /healthz, GET /v1/model, /docs"
DESCRIPTION = ("Serves MODEL (a run directory, a merged, adapter or ONNX export) over HTTP. POST /v1/transcribe takes"
               " the audio as the raw body (Content-Type audio/wav, audio/flac, audio/ogg or "
               "application/octet-stream) or several files as multipart/form-data, and returns what `kidconsole "
               "transcribe` writes per file (long audio: cut at pauses and chunked, with its segments). WebSocket "
               "/v1/stream takes live 16 kHz PCM and answers partial and final phones. Requests and streams "
               "arriving together share a forward pass. Binds to loopback "
               "unless --host says otherwise; SIGTERM lets the requests in flight finish.")


def register(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--api-key-file", metavar="F", help="require the key in F (Authorization: Bearer KEY or X-API-Key)")
    p.add_argument("--max-seconds", type=float, default=1800.0, metavar="S",
                   help="longest audio per file (default 1800)")
    add_long_audio_flags(p)
    p.add_argument("--max-streams", type=int, default=16, metavar="N",
                   help="WebSocket streams (/v1/stream) open at once; more are refused (default 16)")
    p.add_argument("--stream-idle-seconds", type=float, default=10.0, metavar="S",
                   help="a stream that sends nothing for S seconds is closed (default 10)")
    p.add_argument("--partial-ms", type=float, default=300.0, metavar="MS",
                   help="how often a stream's open utterance is decoded for partials (default 300)")
    p.add_argument("--max-body-mb", type=float, default=20.0, metavar="N", help="largest request body (default 20)")
    p.add_argument("--max-concurrent", type=int, default=32, metavar="N",
                   help="requests read, decoded or transcribed at once; more get 503 (default 32)")
    p.add_argument("--max-inflight-mb", type=float, default=256.0, metavar="N",
                   help="bodies and decoded audio of the requests in flight; past it 503 (default 256)")
    p.add_argument("--client-timeout", type=float, default=10.0, metavar="S",
                   help="a connection without a request's headers, or a body that pauses, for S seconds is closed "
                        "(default 10)")
    p.add_argument("--body-seconds", type=float, default=60.0, metavar="S",
                   help="the longest a request body may take to arrive (default 60)")
    p.add_argument("--max-batch", type=int, default=16, metavar="N",
                   help="requests per forward pass (default 16; 1: one at a time)")
    p.add_argument("--batch-wait-ms", type=float, default=5.0, metavar="MS",
                   help="how long a request waits for others to share its pass (default 5)")
    p.add_argument("--graceful-seconds", type=int, default=30, metavar="S",
                   help="on SIGTERM, how long requests in flight may take to finish (default 30)")
    add_decoder_arguments(p)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=needing("serve", "kidconsole serve", run))


def run(args) -> int:
    from trainers.serve import main

    return main(args)
