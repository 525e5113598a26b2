"""Command-line arguments shared by the CLI and the jobs it runs as ``python -m trainers.X``.

A job's arguments are defined once, here, and parsed twice: by ``kidconsole COMMAND`` (kidconsole/cli/) and by
the trainer module that does the work in its own process (trainers/export_job.py, select.py, pseudo.py, augment_preview.py), so the
two cannot drift apart. The flags several commands share (the model a command decodes with, progress bars) live
here too. Light: argparse only; the trainers import this module, never kidconsole.cli.
"""

from __future__ import annotations

import argparse
import sys

SELECT_BY = ("confidence", "phone-confidence", "loss")


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars unless ``--no-progress`` or stderr is not a terminal (a log file, a pipe)."""
    return not args.no_progress and sys.stderr.isatty()


def add_model_arguments(parser: argparse.ArgumentParser, dest: str = "model", metavar: str = "MODEL") -> None:
    """The model a command decodes audio with, where it runs and how much audio goes through it at once
    (transcribe, serve, select, pseudo)."""
    parser.add_argument(dest, metavar=metavar, help="run directory (its export), export folder or .onnx file")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs (default cpu)")
    parser.add_argument("--batch-seconds", type=float, default=60.0, metavar="S",
                        help="padded audio seconds per forward pass (default 60)")


def add_long_audio_flags(parser: argparse.ArgumentParser) -> None:
    """How audio longer than a chunk is cut (transcribe, serve)."""
    parser.add_argument("--chunk-seconds", type=float, default=20.0, metavar="S",
                        help="longer audio is cut into speech segments, and a segment longer than S into chunks "
                             "overlapping by S/6 on each side (default 20)")
    parser.add_argument("--no-vad", action="store_true",
                        help="no voice-activity detection: long audio is only chunked")


def add_scoring_flags(parser: argparse.ArgumentParser) -> None:
    """How a command that decodes a whole pool reads it (select, pseudo)."""
    parser.add_argument("--threads", type=int, default=4, metavar="N", help="threads reading audio (default 4)")
    add_progress_flag(parser)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """``export``: what to export and how to score it (trainers/export_job.py)."""
    p.add_argument("run", metavar="RUN", help="a finished run directory (with exports/merged or exports/adapter)")
    p.add_argument("--int8", action="store_true", help="also quantise to INT8 (ONNX Runtime's dynamic INT8)")
    p.add_argument("--per-channel", action="store_true", help="INT8 weights per channel from the start")
    p.add_argument("--manifest", metavar="M", help="score on this manifest instead of the run's test manifest")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for scoring and timing (default: all)")


def add_select_arguments(p: argparse.ArgumentParser) -> None:
    """``select``: the pool, the hours to pick and how hardness is judged (trainers/select.py)."""
    add_model_arguments(p, "run", "RUN")
    p.add_argument("--manifest", required=True, metavar="M", help="the pool to pick from (JSONL manifest)")
    p.add_argument("--hours", type=float, required=True, metavar="H", help="hours to pick")
    p.add_argument("-o", "--output", metavar="FILE", default="picked.jsonl",
                   help="the picked manifest (default picked.jsonl); FILE.scores.jsonl and FILE.report.json "
                   "beside it")
    p.add_argument("--by", choices=SELECT_BY, default="confidence",
                   help="hardest = lowest mean confidence over the frames (default), lowest mean confidence of "
                   "the decoded phones (an empty decode lowest), or highest CTC loss per phone (labelled rows)")
    p.add_argument("--speaker-hours", type=float, metavar="S",
                   help="the most hours one speaker may give (default: twice an equal share of H)")
    add_scoring_flags(p)


def add_pseudo_arguments(p: argparse.ArgumentParser) -> None:
    """``pseudo``: the audio to label, where the labels go and the confidence kept (trainers/pseudo.py)."""
    add_model_arguments(p, "run", "RUN")
    p.add_argument("audio", metavar="AUDIO", help="a folder of audio files (searched recursively; the speaker is "
                   "each file's folder) or a manifest (.jsonl) whose phones are to be decoded")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the pseudo-labelled manifest")
    p.add_argument("--min-confidence", type=float, required=True, metavar="C",
                   help="keep utterances whose mean CTC confidence is at least C (0-1)")
    p.add_argument("--age-confidence", action="append", default=[], metavar="BUCKET=C",
                   help="another threshold for one age bucket (5-6=0.9; buckets <5, 5-6, 7-8, 9-10, 11-17, "
                   "18+, unknown); repeatable")
    add_scoring_flags(p)


def add_align_arguments(p: argparse.ArgumentParser) -> None:
    """``align``: the model, the manifest and where the alignments go (trainers/align.py)."""
    add_model_arguments(p)
    p.add_argument("manifest", metavar="MANIFEST", help="utterances with reference phones (JSONL manifest)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the alignments (JSONL; default RUN/alignments.jsonl for a run directory, where the console "
                   "shows them, else ./alignments.jsonl); started again, it resumes")
    add_scoring_flags(p)


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    """``audit``: the model, the manifest, where the suspects go and how they are chosen (trainers/audit.py)."""
    add_model_arguments(p)
    p.add_argument("manifest", metavar="MANIFEST", help="the labelled utterances to audit (JSONL manifest)")
    p.add_argument("-o", "--output", metavar="FILE", default="suspects.jsonl",
                   help="the suspects' manifest rows (default suspects.jsonl); FILE.report.json / .md and the "
                   "alignments FILE.alignments.jsonl (resumed when run again) beside it")
    p.add_argument("--top", type=int, metavar="N", help="the N worst labels are the suspects (default: the outliers)")
    p.add_argument("--threshold", type=float, default=3.5, metavar="Z",
                   help="without --top: a label is suspect when its misfit is more than Z robust standard "
                   "deviations above the median (default 3.5)")
    p.add_argument("--show", type=int, default=20, metavar="N", help="suspects printed here (default 20)")
    add_scoring_flags(p)


def read_key_file(path: str) -> str:
    """An API key from its file (``--api-key-file``, the server's and a client's)."""
    from pathlib import Path

    from kidconsole.errors import KidconsoleError

    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise KidconsoleError(f"--api-key-file {path}: {e.strerror}") from e
    if not key:
        raise KidconsoleError(f"--api-key-file {path}: the file is empty")
    return key


def add_augment_preview_arguments(p: argparse.ArgumentParser) -> None:
    """`kidconsole augment preview` (trainers/augment_preview.py)."""
    p.add_argument("config", metavar="CONFIG", help="a run config (YAML), or a run directory (its config.yaml)")
    p.add_argument("--utterance", required=True, metavar="ID", help="the utterance's id in the phase's train "
                   "manifest(s)")
    p.add_argument("--phase", type=int, default=1, metavar="N", help="the phase whose augmentation is shown "
                   "(1-based; default 1)")
    p.add_argument("--epoch", type=int, default=1, metavar="E", help="the epoch whose draws are shown (1-based; "
                   "default 1): the trainer's own draws for the utterance")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the WAV and PNG files")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config key, as `run launch --set` (repeatable)")
