"""``kidconsole corpus index|synth|long``: build a manifest, write a synthetic corpus or a long recording."""

from __future__ import annotations

import argparse

from kidconsole.cli import add_progress_flag, show_progress
from kidconsole.palette import WARNING


HELP = "index AI Hub label files into a manifest; synthesize a corpus"


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)

    ix = sub.add_parser("index", help="label JSON (folders or zip archives) -> manifest JSONL",
                        description="Index an AI Hub corpus (extracted or zipped) into the manifest. "
                        "Rejected files are listed with their reason in NAME.rejects.jsonl; "
                        "re-runs reuse the parsed rows of unchanged files (NAME.jsonl.cache/).")
    ix.add_argument("root", help="corpus root (split folders 1.Training, 2.Validation, 3.Test) or one zip")
    ix.add_argument("-o", "--output", required=True, help="manifest path (.jsonl)")
    ix.add_argument("-j", "--processes", type=int, default=None, help="worker processes (default: all cores)")
    ix.add_argument("--chunk", type=int, default=2000, help="label files per work unit (default 2000)")
    ix.add_argument("--no-resume", action="store_true", help="parse every file again")
    ix.add_argument("--no-probe", action="store_true",
                    help="trust the labels' sample rate and length instead of reading each WAV header")
    ix.add_argument("--estimate-snr", action="store_true",
                    help="estimate a missing SNR from the audio (WADA-SNR), marked as estimated")
    ix.add_argument("--sample-rate", type=int, default=16000, help="required sample rate (0: any)")
    ix.add_argument("--min-duration", type=float, default=0.3, help="seconds; shorter or equal is rejected")
    ix.add_argument("--max-duration", type=float, default=30.0, help="seconds; longer is rejected")
    ix.add_argument("--quality", default="Good",
                    help="accepted QualityStatus values, comma-separated ('' accepts all)")
    ix.add_argument("--speaker-scope", default="", help="salt for speaker ids when indexing several corpora")
    ix.add_argument("--g2p-cache", default=None, help="G2P cache file (default $KIDCONSOLE_G2P_CACHE)")
    add_progress_flag(ix)
    ix.add_argument("--quiet", action="store_true", dest="no_progress", help=argparse.SUPPRESS)  # the old name
    ix.set_defaults(func=_index)

    sy = sub.add_parser("synth", help="write a small synthetic corpus in the AI Hub layout",
                        description="Adult and child (3-10 years) voices, label JSON in the English-key "
                        "schema, 16 kHz mono WAV; deterministic by seed. See docs/synthetic-corpus.md.")
    sy.add_argument("out", help="output folder (must be empty or absent)")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--adults", type=int, default=8, help="adult speakers (default 8)")
    sy.add_argument("--children-per-age", type=int, default=2, help="child speakers per age 3-10 (default 2)")
    sy.add_argument("--utterances", type=int, default=30, help="utterances per speaker (default 30)")
    sy.add_argument("--bad-files", action="store_true", help="also write one file of each bad kind")
    sy.add_argument("--zip", action="store_true", help="write TL_/TS_ zip archives instead of folders")
    sy.add_argument("--sentences", default=None, help="text file of sentences, one a line")
    sy.add_argument("--label-errors", type=float, default=0.0, metavar="SHARE",
                    help="give this share of the training split a wrong label (another sentence, half the words, "
                    "or audio that lost its start), listed in planted_errors.jsonl (default 0)")
    sy.add_argument("--mispronounce", type=float, default=0.0, metavar="SHARE",
                    help="in this share of children's utterances say one phone as a child's typical substitute "
                    "(S as D, G as D ...) under the canonical label, listed in mispronounced.jsonl (default 0)")
    sy.add_argument("--phone-times", action="store_true",
                    help="write each utterance's phone boundaries as rendered to phone_times.jsonl")
    sy.set_defaults(func=_synth)

    lg = sub.add_parser("long", help="one long recording of a manifest's utterances, with silences and noise",
                        description="The utterances one after another (again from the first when needed), a "
                        "silence before each, white noise throughout, until the recording is --minutes long; "
                        "OUT.jsonl beside OUT lists each utterance's place and phones.")
    lg.add_argument("manifest", help="the utterances (.jsonl), e.g. a test split")
    lg.add_argument("out", help="the recording (.wav)")
    lg.add_argument("--minutes", type=float, default=10.0, help="length (default 10)")
    lg.add_argument("--seed", type=int, default=0)
    lg.add_argument("--gap", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                    help="seconds of silence before each utterance (default 1 3)")
    lg.add_argument("--noise", type=float, default=0.003, help="white noise standard deviation (default 0.003)")
    lg.set_defaults(func=_long)


def _index(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from kidconsole.corpus.filters import FilterConfig
    from kidconsole.corpus.index import IndexOptions, build_index, side_paths

    filters = FilterConfig(
        quality=tuple(q.strip() for q in args.quality.split(",") if q.strip()),
        sample_rate=args.sample_rate or None,
        min_duration=args.min_duration, max_duration=args.max_duration)
    opts = IndexOptions(filters=filters, probe_audio=not args.no_probe,
                        estimate_snr=args.estimate_snr, speaker_scope=args.speaker_scope)
    s = build_index(args.root, args.output, options=opts, processes=args.processes, chunk=args.chunk,
                    resume=not args.no_resume, g2p_cache=args.g2p_cache, progress=show_progress(args))
    table = Table(title=f"corpus index: {s.manifest}", show_header=False)
    table.add_row("label files", f"{s.labels:,}")
    table.add_row("kept", f"{s.kept:,}  ({s.hours:.2f} h, {s.speakers:,} speakers)")
    for split, n in s.by_split.items():
        table.add_row(f"  {split}", f"{n:,}")
    table.add_row("rejected", f"{sum(s.rejected.values()):,}  (listed in {s.rejects})")
    for reason, n in sorted(s.rejected.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("distinct transcripts", f"{s.distinct_texts:,}")
    table.add_row("units reused", f"{s.cached_units}/{s.units}")
    rate = s.labels / s.seconds if s.seconds else 0
    table.add_row("time", f"{s.seconds:.1f} s ({rate:,.0f} labels/s)")
    table.add_row("summary", str(side_paths(s.manifest)[1]))
    Console().print(table)
    return 0


def _synth(args: argparse.Namespace) -> int:
    from rich.console import Console

    from kidconsole.corpus.synth import PLANTED_FILE, load_sentences, synthesize

    s = synthesize(args.out, seed=args.seed, adults=args.adults, children_per_age=args.children_per_age,
                   utterances_per_speaker=args.utterances, bad_files=args.bad_files, zipped=args.zip,
                   sentences=load_sentences(args.sentences) if args.sentences else None,
                   label_errors=args.label_errors, phone_times=args.phone_times, mispronounce=args.mispronounce)
    con = Console()
    con.print(f"[bold]{s.utterances}[/] utterances ({s.hours:.2f} h) from {s.adults} adults and "
              f"{s.children} children in {s.out_dir} ({s.seconds:.1f} s); "
              + ", ".join(f"{k} {v}" for k, v in s.by_split.items()))
    if s.bad_files:
        con.print(f"{len(s.bad_files)} bad files: " + ", ".join(sorted(set(s.bad_files.values()))))
    if s.planted:
        con.print(f"{len(s.planted)} label errors planted (listed in {s.out_dir / PLANTED_FILE})")
    if s.skipped_sentences:
        con.print(f"[{WARNING}]{len(s.skipped_sentences)} transcripts without phones were skipped")
    return 0


def _long(args: argparse.Namespace) -> int:
    from kidconsole.corpus.longrec import long_recording, truth_path

    placed = long_recording(args.manifest, args.out, minutes=args.minutes, seed=args.seed, gap=tuple(args.gap),
                            noise=args.noise)
    print(f"{len(placed)} utterances in {args.minutes:g} min: {args.out}, their places in {truth_path(args.out)}")
    return 0
