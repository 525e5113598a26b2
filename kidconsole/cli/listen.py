"""``kidconsole listen MODEL|URL [--wav FILE]``: live speech to a model, partials and finals printed."""

from __future__ import annotations

import argparse

HELP = "stream a WAV file (or the microphone) to a model or a server in real time; print partials and finals"
DESCRIPTION = ("Sends 16 kHz PCM in real time to a server's /v1/stream (URL: http://host:port or ws://.../v1/stream,"
               " a running `kidconsole serve`) or to MODEL (a run directory or export, served on a loopback port "
               "of this process for the purpose), and prints the partial phones as they settle and a line per "
               "utterance as it ends. Without --wav, the microphone (needs the sounddevice package and an input "
               "device). The client of docs/deploy.md, ready to run.")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="MODEL|URL", help="a model (run directory, export) or a server's URL")
    p.add_argument("--wav", metavar="FILE", help="stream this sound file instead of the microphone")
    p.add_argument("--chunk-ms", type=float, default=100.0, metavar="MS", help="PCM per message (default 100)")
    p.add_argument("--fast", action="store_true", help="send as fast as the server takes it, not in real time")
    p.add_argument("--no-vad", action="store_true",
                   help="no voice-activity detection: one utterance, ended when the audio ends")
    p.add_argument("--api-key-file", metavar="F", help="the server's key, read from F")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where MODEL runs (default cpu)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from kidconsole.errors import KidconsoleError
    from kidconsole.job_arguments import read_key_file
    from kidconsole.stream_client import Printer, microphone_chunks, stream, wav_chunks

    if not 20 <= args.chunk_ms <= 1000:
        raise KidconsoleError(f"--chunk-ms {args.chunk_ms:g}: between 20 and 1000")
    key = read_key_file(args.api_key_file) if args.api_key_file else None
    chunks = wav_chunks(args.wav, args.chunk_ms) if args.wav else microphone_chunks(args.chunk_ms)
    stop = None
    if "://" in args.target:
        url = args.target
    elif Path(args.target).exists():
        from kidconsole.cli.serve import register as serve_arguments
        from kidconsole.extras import need
        from kidconsole.runs.launch import free_port
        from trainers.serve import serve_in_background

        need("serve", "kidconsole listen MODEL")
        parser = argparse.ArgumentParser()
        serve_arguments(parser)
        port = free_port()
        stop = serve_in_background(parser.parse_args(
            [args.target, "--device", args.device, "--port", str(port)] + (["--no-vad"] if args.no_vad else [])))
        url = f"http://127.0.0.1:{port}"
    else:
        raise KidconsoleError(f"{args.target}: neither a URL (http://host:port) nor a model folder")
    printer = Printer()
    try:
        stream(url, chunks, printer, chunk_ms=args.chunk_ms, realtime=not args.fast, api_key=key,
               vad=not args.no_vad)
    finally:
        if stop is not None:
            stop()
    return 0
