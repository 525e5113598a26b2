"""``kidconsole transcribe MODEL INPUT...``: audio to phones, pronounced Hangul and confidences."""

from __future__ import annotations

import argparse

from kidconsole.cli import add_model_arguments, add_output_flags, add_progress_flag
from kidconsole.decoding import add_decoder_arguments
from kidconsole.job_arguments import add_long_audio_flags
from kidconsole.extras import needing

FORMATS = ("jsonl", "tsv", "text")


HELP = "transcribe audio files, folders or a manifest with a trained model"
DESCRIPTION = ("Phones, the pronounced Hangul composed from them, each phone's confidence (its CTC posterior), the "
               "duration and the processing time of every utterance. MODEL: a run directory (its export), a merged or"
               " adapter export, or an ONNX export. INPUT: audio files (any sample rate and channel count), folders "
               "(searched recursively) or a manifest (.jsonl; with reference phones it also prints PER / CER / WER). "
               "Audio longer than --chunk-seconds, of any length, is cut at pauses (voice-activity detection) and "
               "decoded in overlapping chunks; its record adds the segments with their times. "
               "Files that cannot be used are skipped and listed with the reason (exit code 1).")


def register(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="audio file, folder or manifest")
    add_long_audio_flags(p)
    add_output_flags(p, FORMATS, otherwise="jsonl")
    add_decoder_arguments(p)
    add_progress_flag(p)
    p.set_defaults(func=needing("train", "kidconsole transcribe", run))


def run(args) -> int:
    from trainers.transcribe import main

    return main(args)
