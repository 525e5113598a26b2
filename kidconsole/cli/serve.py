"""``kidconsole serve MODEL``: the model behind an HTTP API (FastAPI + uvicorn), requests micro-batched."""

from __future__ import annotations

import argparse

from kidconsole.cli import add_model_arguments
from kidconsole.decoding import add_decoder_arguments
from kidconsole.extras import needing


HELP = "serve a model over HTTP: POST /v1/transcribe, GET /healthz, GET /v1/model, docs at /docs"
DESCRIPTION = ("Serves MODEL (a run directory, a merged, adapter or ONNX export) over HTTP. POST /v1/transcribe takes"
               " the audio as the raw body (Content-Type audio/wav, audio/flac, audio/ogg or "
               "application/octet-stream) or several files as multipart/form-data, and returns what `kidconsole "
               "transcribe` writes per file. Requests arriving together share a forward pass. Binds to loopback "
               "unless --host says otherwise; SIGTERM lets the requests in flight finish.")


def register(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--api-key-file", metavar="F", help="require the key in F (Authorization: Bearer KEY or X-API-Key)")
    p.add_argument("--max-seconds", type=float, default=30.0, metavar="S", help="longest audio per file (default 30)")
    p.add_argument("--max-body-mb", type=float, default=20.0, metavar="N", help="largest request body (default 20)")
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
