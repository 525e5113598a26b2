"""``kidconsole export RUN --onnx [--int8]``: ONNX (and INT8) exports of a finished run, scored and measured."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="ONNX / INT8 exports of a finished run, scored on its test manifest like runs",
        description="Exports RUN's merged model to ONNX (dynamic batch and length, checked against PyTorch) and, "
        "with --int8, ONNX Runtime's dynamic INT8. Each export is scored on the run's test manifest and becomes "
        "a run directory under RUN/exports/<kind>/ (kidconsole report reads it); the table of sizes, CPU "
        "real-time factors and PER against the PyTorch fp32 model is printed and written to "
        "RUN/exports/exports.md.")
    p.add_argument("run", metavar="RUN", help="a finished run directory")
    p.add_argument("--onnx", action="store_true", help="export to ONNX (fp32)")
    p.add_argument("--int8", action="store_true", help="also quantise to INT8 (implies --onnx)")
    p.add_argument("--per-channel", action="store_true", help="INT8 weights per channel from the start")
    p.add_argument("--manifest", metavar="M", help="score on this manifest instead of the run's test manifest")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for scoring and timing (default: all)")
    p.set_defaults(func=run)


def run(args) -> int:
    from kidconsole.errors import KidconsoleError

    if not (args.onnx or args.int8):
        raise KidconsoleError("choose what to export: --onnx (and --int8)")
    from trainers.export_job import main

    argv = [args.run] + (["--int8"] if args.int8 else []) + (["--per-channel"] if args.per_channel else [])
    argv += (["--manifest", args.manifest] if args.manifest else []) + (
        ["--threads", str(args.threads)] if args.threads else [])
    return main(argv)
