"""``kidconsole transcribe MODEL INPUT...``: audio to phones, pronounced Hangul and confidences."""

from __future__ import annotations

FORMATS = ("jsonl", "tsv", "text")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "transcribe", help="transcribe audio files, folders or a manifest with a trained model",
        description="Phones, the pronounced Hangul composed from them, each phone's confidence (its CTC "
        "posterior), the duration and the processing time of every utterance. MODEL: a run directory (its "
        "export), a merged or adapter export, or an ONNX export. INPUT: audio files (any sample rate and channel "
        "count), folders (searched recursively) or a manifest (.jsonl; with reference phones it also prints "
        "PER / CER / WER). Files that cannot be used are skipped and listed with the reason (exit code 1).")
    p.add_argument("model", metavar="MODEL", help="run directory, export folder or .onnx file")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="audio file, folder or manifest")
    p.add_argument("-o", "--output", metavar="FILE", help="write the results to FILE (default stdout)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from -o's suffix, else jsonl)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs (default cpu)")
    p.add_argument("--batch-seconds", type=float, default=60.0, metavar="S",
                   help="padded audio seconds per forward pass (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on long inputs")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainers.transcribe import main

    return main(args)
