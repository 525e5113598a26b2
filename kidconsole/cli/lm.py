"""``kidconsole lm build``: a phone n-gram LM (ARPA) for beam decoding; ``kidconsole lm show``: what one holds.

``kidconsole lm build SOURCE... -o phones.arpa [--order 3]``: SOURCE is a manifest (``.jsonl``: its phones) or
a text file (Korean, a sentence a line, through the G2P). ``kidconsole lm build RUN``: from the run's train
manifests into ``RUN/exports/lm/phones.arpa``, stored with its exports. See docs/decoding.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kidconsole.errors import KidconsoleError

HELP = "build a phone n-gram language model for beam decoding (ARPA, Kneser-Ney)"
DESCRIPTION = ("A phone n-gram LM (interpolated Kneser-Ney, in the ARPA format KenLM reads) from manifests' phones, "
               "Korean text through the G2P, or a run's train manifests (stored in RUN/exports/lm/). Used by "
               "`--decoder beam --lm FILE` of transcribe, serve and scoring, and by a run config's decode.lm.")


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="lm_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="count phones and write an ARPA LM",
                       description="Build a phone LM from manifests (.jsonl), Korean text files, or a run directory "
                       "(its train manifests; written to RUN/exports/lm/phones.arpa).")
    b.add_argument("sources", nargs="+", metavar="SOURCE", help="manifest (.jsonl), text file, or one run directory")
    b.add_argument("-o", "--output", metavar="FILE", help="the .arpa to write (default for a run: "
                   "RUN/exports/lm/phones.arpa; else phones.arpa)")
    b.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    b.set_defaults(func=run_build)
    s = sub.add_parser("show", help="print what an LM was built from", description="Print an LM's record (FILE.json).")
    s.add_argument("lm", metavar="FILE", help="an .arpa written by `lm build`")
    s.set_defaults(func=run_show)


def _run_sources(run: Path) -> list[str]:
    from kidconsole.config import read_run_config

    cfg = read_run_config(run)
    if cfg is None:
        raise KidconsoleError(f"{run}: a run directory without a readable config.yaml")
    return list(dict.fromkeys(path for p in cfg.phases for path, _ in cfg.train_manifests(p)))


def run_build(args) -> int:
    from rich.console import Console

    from kidconsole import rundir
    from kidconsole.phone_lm import build_phone_lm

    sources = args.sources
    output = args.output
    if len(sources) == 1 and Path(sources[0]).is_dir():
        run = Path(sources[0])
        sources = _run_sources(run)
        output = output or str(run / rundir.EXPORTS / rundir.PHONE_LM)
    info = build_phone_lm(sources, output or "phones.arpa", order=args.order)
    con = Console(stderr=True, highlight=False)
    con.print(f"{info.arpa}: order {info.order}, n-grams {'/'.join(map(str, info.ngrams))}, from {info.sentences} "
              f"utterances ({info.tokens} phones) in {info.seconds:.1f} s", markup=False)
    if info.skipped:
        con.print(f"{info.skipped} rows skipped, e.g. {info.skipped_examples[0]}", markup=False)
    return 0


def run_show(args) -> int:
    from kidconsole.phone_lm import arpa_unigrams, info_path

    path = info_path(args.lm)
    arpa_unigrams(args.lm)  # a missing or non-ARPA file says so
    try:
        info = json.loads(path.read_text(encoding="utf-8")[:1 << 20])
    except (OSError, ValueError) as e:
        raise KidconsoleError(f"{path}: no readable record beside the LM ({e})") from e
    for k in ("arpa", "order", "ngrams", "discounts", "sentences", "tokens", "skipped", "sources"):
        print(f"{k}: {info.get(k)}")
    return 0
